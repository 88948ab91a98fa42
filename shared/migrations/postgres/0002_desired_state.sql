-- Desired state written by the queen's commands (replicas per kind, restart/recreate
-- generations, drains). Hosts read it on every heartbeat and after reconnecting, so a lost
-- pub/sub announcement loses nothing. Each write bumps `generation`.
CREATE TABLE desired_state (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    generation BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
