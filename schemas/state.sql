-- Restricted linkage state (state/state.duckdb). Holds tokens, encodings and the crosswalk:
-- never handed to evaluators. No raw PII: names, dates of birth, SSNs etc. exist only as
-- keyed tokens and Bloom-filter encodings.
-- Version 1.

CREATE TABLE IF NOT EXISTS runs (
    run_id        VARCHAR PRIMARY KEY,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    status        VARCHAR NOT NULL,          -- running | completed | failed
    periods       VARCHAR,                   -- comma-separated periods processed
    code_version  VARCHAR NOT NULL,
    key_fingerprint VARCHAR
);

-- One row per file seen in landing/. A corrected file for the same partner, period and dataset
-- supersedes the earlier one (status = 'superseded', superseded_by = new sha256).
CREATE TABLE IF NOT EXISTS files (
    sha256          VARCHAR NOT NULL,
    partner_id      VARCHAR NOT NULL,
    period          VARCHAR NOT NULL,
    dataset         VARCHAR NOT NULL,
    rel_path        VARCHAR NOT NULL,
    size_bytes      BIGINT NOT NULL,
    status          VARCHAR NOT NULL,        -- accepted | rejected | superseded
    reason          VARCHAR,                 -- file-level rejection reason (no PII)
    rows_read       BIGINT,
    rows_accepted   BIGINT,
    rows_quarantined BIGINT,
    contract        VARCHAR,
    encoding_schema VARCHAR,
    key_fingerprint VARCHAR,
    code_version    VARCHAR,
    run_id          VARCHAR NOT NULL,
    processed_at    TIMESTAMP NOT NULL,
    superseded_by   VARCHAR,
    reading_fingerprint VARCHAR,             -- hash of the partner's map/values/sheet/ages
    processed_because VARCHAR,               -- new | corrected | map_changed |
                                             -- contract_changed | encoding_changed |
                                             -- reprocess_requested
    PRIMARY KEY (sha256, partner_id, period, dataset)
);

-- A file processed again (its map or contract changed, or `run --reprocess`): what its
-- ledger row said before it was replaced.
CREATE TABLE IF NOT EXISTS reprocessed (
    run_id          VARCHAR NOT NULL,
    sha256          VARCHAR NOT NULL,
    partner_id      VARCHAR NOT NULL,
    period          VARCHAR NOT NULL,
    dataset         VARCHAR NOT NULL,
    because         VARCHAR NOT NULL,        -- map_changed | contract_changed |
                                             -- reprocess_requested
    previous_run_id VARCHAR,
    previous_processed_at TIMESTAMP,
    previous_contract VARCHAR,
    previous_reading_fingerprint VARCHAR,
    recorded_at     TIMESTAMP NOT NULL
);

-- Row-level validation issues: row number, field and rule only; never a value.
CREATE TABLE IF NOT EXISTS row_issues (
    sha256      VARCHAR NOT NULL,
    source_row  BIGINT NOT NULL,
    field       VARCHAR NOT NULL,
    rule        VARCHAR NOT NULL,
    severity    VARCHAR NOT NULL,
    action      VARCHAR NOT NULL             -- quarantined | field_dropped | warned
);

-- Periods whose drops have been processed and published.
CREATE TABLE IF NOT EXISTS periods (
    period        VARCHAR PRIMARY KEY,
    run_id        VARCHAR NOT NULL,
    processed_at  TIMESTAMP NOT NULL
);

-- Latest crosswalk: partner record -> pseudonymous person.
CREATE TABLE IF NOT EXISTS crosswalk (
    record_key        VARCHAR PRIMARY KEY,
    partner_id        VARCHAR NOT NULL,
    partner_record_id VARCHAR NOT NULL,
    person_id         VARCHAR NOT NULL,
    cluster_reason    VARCHAR,
    run_id            VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS id_history (
    run_id            VARCHAR NOT NULL,
    person_id         VARCHAR NOT NULL,
    event             VARCHAR NOT NULL,      -- created | merged_into | split_from
    related_person_id VARCHAR,
    record_count      BIGINT,
    reason            VARCHAR,
    recorded_at       TIMESTAMP NOT NULL
);

-- Possible matches for clerical review: similarity profiles only.
CREATE TABLE IF NOT EXISTS clerical_review (
    run_id        VARCHAR NOT NULL,
    record_key_l  VARCHAR NOT NULL,
    record_key_r  VARCHAR NOT NULL,
    match_weight  DOUBLE,
    match_probability DOUBLE,
    profile       VARCHAR                    -- gamma_<feature>=level;...
);

-- The crosswalk as it stood after each processed period, for month-over-month audits.
CREATE TABLE IF NOT EXISTS crosswalk_snapshots (
    period      VARCHAR NOT NULL,
    run_id      VARCHAR NOT NULL,
    record_key  VARCHAR NOT NULL,
    person_id   VARCHAR NOT NULL
);

-- Clerical review (docs/review.md): record keys, weights, gamma levels, counts and who decided
-- when; never a value, token or filter.
-- The latest link's pairs at or above the possible-match weight (class match or possible) and
-- its pool of non-match candidates drawn uniformly near the threshold (class non_match);
-- `linked`: the run put the two records in one person.
CREATE TABLE IF NOT EXISTS review_pairs (
    run_id        VARCHAR NOT NULL,
    period        VARCHAR NOT NULL,
    pair_id       VARCHAR NOT NULL,
    record_key_l  VARCHAR NOT NULL,
    record_key_r  VARCHAR NOT NULL,
    match_weight  DOUBLE NOT NULL,
    match_probability DOUBLE,
    match_class   VARCHAR NOT NULL,          -- match | possible | non_match (the pool)
    frequency_adjustment DOUBLE,
    profile       VARCHAR NOT NULL,          -- gamma_<feature>=level;...
    linked        BOOLEAN
);

-- Each link: the model snapshot (log2 Bayes factors per comparison level, prior, caps,
-- thresholds) and the census of every candidate pair by weight (strata and histogram), JSON.
CREATE TABLE IF NOT EXISTS link_models (
    run_id        VARCHAR NOT NULL,
    period        VARCHAR NOT NULL,
    linked_at     TIMESTAMP NOT NULL,
    linkage_spec  VARCHAR NOT NULL,
    model         VARCHAR NOT NULL,
    strata        VARCHAR NOT NULL,
    histogram     VARCHAR NOT NULL,
    pool_population BIGINT,
    PRIMARY KEY (run_id, period)
);

-- Review decisions, keyed by partner record ids (they survive key rotations). The latest
-- decision on a pair is the one in force: match = must-link, distinct = cannot-link,
-- unsure = none.
CREATE TABLE IF NOT EXISTS review_decisions (
    decision_id   VARCHAR PRIMARY KEY,
    pair_id       VARCHAR NOT NULL,
    partner_id_l  VARCHAR NOT NULL,
    partner_record_id_l VARCHAR NOT NULL,
    partner_id_r  VARCHAR NOT NULL,
    partner_record_id_r VARCHAR NOT NULL,
    decision      VARCHAR NOT NULL,          -- match | distinct | unsure
    decided_by    VARCHAR NOT NULL,
    decided_at    TIMESTAMP NOT NULL,
    source        VARCHAR NOT NULL,          -- command | import:<file name>
    match_weight  DOUBLE,                    -- the pair's weight when decided (if scored)
    run_id        VARCHAR                    -- the link run whose pairs were on show
);

-- Random samples of a link's candidate pairs drawn for review (accuracy estimates).
CREATE TABLE IF NOT EXISTS review_samples (
    sample_id     VARCHAR PRIMARY KEY,
    run_id        VARCHAR NOT NULL,
    period        VARCHAR NOT NULL,
    drawn_at      TIMESTAMP NOT NULL,
    drawn_by      VARCHAR NOT NULL,
    seed          BIGINT NOT NULL,
    size          BIGINT NOT NULL,
    design        VARCHAR NOT NULL           -- JSON: thresholds, strata, allocation
);

CREATE TABLE IF NOT EXISTS review_sample_pairs (
    sample_id     VARCHAR NOT NULL,
    pair_id       VARCHAR NOT NULL,
    record_key_l  VARCHAR NOT NULL,
    record_key_r  VARCHAR NOT NULL,
    stratum       INTEGER NOT NULL,
    match_weight  DOUBLE NOT NULL,
    match_class   VARCHAR NOT NULL,
    frequency_adjustment DOUBLE,
    profile       VARCHAR NOT NULL,
    linked        BOOLEAN NOT NULL
);
