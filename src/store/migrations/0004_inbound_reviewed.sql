-- When a person reviewed a flagged inbound message (`gsmgate members review NUMBER --keep` or
-- `--opt-out`). NULL means nobody has looked at it yet: a `possible_opt_out` message with no
-- review is what `members review` lists. Messages flagged before this migration were never shown
-- to anyone, so they start unreviewed.
ALTER TABLE messages_in ADD COLUMN reviewed_at INTEGER;
CREATE INDEX messages_in_unreviewed ON messages_in (thread, received_at)
    WHERE flag = 'possible_opt_out' AND reviewed_at IS NULL;
