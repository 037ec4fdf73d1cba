-- The sign-in limit is counted from the sign-in log (so every server sharing a database counts
-- alike): failures per client address, and per account name since its last sign-in.
CREATE INDEX sign_in_events_client ON sign_in_events (client, event, at);
CREATE INDEX sign_in_events_account ON sign_in_events (lower(username), event, id);
