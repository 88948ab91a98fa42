-- Every decision of a supervisor (agent host or the queen's health supervisor) that led to
-- an action: what it saw, what it did, how that went and why. Newest first in the API.
CREATE TABLE supervisor_actions (
    id          BIGSERIAL PRIMARY KEY,
    component   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    node        TEXT    NOT NULL,
    observation TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    at          BIGINT  NOT NULL
);
CREATE INDEX supervisor_actions_at ON supervisor_actions (at);
CREATE INDEX supervisor_actions_kind ON supervisor_actions (kind, at);
