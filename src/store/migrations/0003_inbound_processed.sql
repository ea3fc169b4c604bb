-- When the community step (keywords, consent, automatic replies) was applied to an inbound
-- message, in the same transaction as its effects. NULL means "stored but not yet processed": a
-- crash between storing a message (which lets the modem delete the SIM copy) and enqueueing its
-- replies is finished at the next start instead of losing a STOP confirmation or a welcome.
-- Messages stored before this migration were processed by the build that stored them.
ALTER TABLE messages_in ADD COLUMN processed_at INTEGER;
UPDATE messages_in SET processed_at = received_at;
CREATE INDEX messages_in_unprocessed ON messages_in (id) WHERE processed_at IS NULL;
