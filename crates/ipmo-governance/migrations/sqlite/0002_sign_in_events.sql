-- Sign-ins, failed sign-ins, lock-outs and sign-outs, for administrators to see a
-- password-guessing attack (ASVS V7). Kept apart from the audit trail, which viewers read:
-- these rows carry client addresses and the names people tried. A restore leaves them as they
-- are: a security log is not rolled back with the records.
CREATE TABLE sign_in_events (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    event    TEXT NOT NULL,
    username TEXT NOT NULL,
    client   TEXT NOT NULL,
    detail   TEXT NOT NULL
);
