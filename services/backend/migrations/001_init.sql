-- Predictions served by POST /predict: the request, the answer, and which model
-- (sha256 of the model file) gave it.
CREATE TABLE predictions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    features     double precision[] NOT NULL CHECK (cardinality(features) = 4),
    label        text NOT NULL,
    scores       double precision[] NOT NULL,
    model_sha256 text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
