-- The baseline's tables. Money is bigint minor units; available = posted - held + overdraft_limit.
CREATE TABLE api_keys (
    key_hash  text PRIMARY KEY,          -- sha256 hex of the API key, as the gateway stores it
    user_id   text NOT NULL,
    role      text NOT NULL
);

CREATE TABLE accounts (
    id              text PRIMARY KEY,
    currency        char(3) NOT NULL,
    posted          bigint NOT NULL DEFAULT 0,
    held            bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    overdraft_limit bigint NOT NULL DEFAULT 0,
    version         bigint NOT NULL DEFAULT 0
);

CREATE TABLE account_members (
    account_id text NOT NULL REFERENCES accounts (id),
    user_id    text NOT NULL,
    PRIMARY KEY (account_id, user_id)
);

CREATE TABLE payments (
    id              text PRIMARY KEY,    -- derived from (principal, account, Idempotency-Key)
    account_id      text NOT NULL REFERENCES accounts (id),
    principal       text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        char(3) NOT NULL,
    payee           text NOT NULL,
    description     text,
    status          text NOT NULL,       -- reserved | succeeded | failed | declined | unknown
    psp_movement_id text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One balanced double-entry transaction per captured payment, as our ledger topic has.
CREATE TABLE ledger_entries (
    id         bigserial PRIMARY KEY,
    payment_id text NOT NULL REFERENCES payments (id),
    debit      text NOT NULL,
    credit     text NOT NULL,
    amount     bigint NOT NULL CHECK (amount > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The unique constraint is the idempotency mechanism: a concurrent duplicate INSERT waits for the first
-- transaction and then conflicts. status_code NULL = in flight.
CREATE TABLE idempotency_keys (
    principal     text NOT NULL,
    key           text NOT NULL,
    fingerprint   text NOT NULL,
    status_code   integer,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
