-- Analyst feedback on events: the label, an optional note and the sample the keyword
-- agents' adaptation layer learns from (pattern keys and the model's log-odds at judgment).
-- The adaptation layer is replayed from this table in id order, so it survives restarts.
CREATE TABLE feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   INTEGER  NOT NULL,
    label      TEXT    NOT NULL,
    note       TEXT,
    sample     TEXT    NOT NULL,
    created_at INTEGER  NOT NULL
);
CREATE INDEX feedback_event ON feedback (event_id);
