-- GET /predictions reads the most recent rows first.
CREATE INDEX predictions_created_at_idx ON predictions (created_at DESC, id DESC);
