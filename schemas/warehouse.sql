-- The analyst's pseudonymous warehouse (state/warehouse.duckdb, restricted: person-level).
-- Evaluators never get these tables: published/pathlink.duckdb holds only the released_*
-- aggregates computed from them (pipelines/warehouse/tiers.py).
-- No names, dates of birth, SSNs, contact details, addresses, partner record ids or tokens.
-- Version 3 (release records the release mode; the file moved from published/ to state/).

CREATE TABLE partner (
    partner_id   VARCHAR PRIMARY KEY,
    partner_name VARCHAR
);

-- One row per pseudonymous person. person_id is random and carries no information.
CREATE TABLE person (
    person_id  VARCHAR PRIMARY KEY,
    birth_year INTEGER,                      -- year only
    sex        VARCHAR,                      -- F | M | X | NULL
    zip3       VARCHAR                       -- first three ZIP digits only
);

-- Who was served by which partner, and when (first and last monthly extract seen).
CREATE TABLE participation (
    person_id    VARCHAR NOT NULL,
    partner_id   VARCHAR NOT NULL,
    first_period VARCHAR NOT NULL,           -- YYYY-MM
    last_period  VARCHAR NOT NULL,
    records      INTEGER NOT NULL,           -- partner records linked to this person
    PRIMARY KEY (person_id, partner_id)
);

-- Person ID changes (merges, splits, creations) so evaluators can follow what changed.
CREATE TABLE person_id_history (
    run_id            VARCHAR NOT NULL,
    person_id         VARCHAR NOT NULL,
    event             VARCHAR NOT NULL,
    related_person_id VARCHAR,
    recorded_at       TIMESTAMP NOT NULL
);

CREATE TABLE release (
    run_id        VARCHAR NOT NULL,
    published_at  TIMESTAMP NOT NULL,
    periods       VARCHAR NOT NULL,
    code_version  VARCHAR NOT NULL,
    schema_version INTEGER NOT NULL,
    linkage_spec  VARCHAR NOT NULL,          -- spec the run linked with: pathlink-linkage/4
    encoding_schema VARCHAR NOT NULL,        -- encoding of the linked records: pathlink-encoding/2
    release_mode  VARCHAR NOT NULL DEFAULT 'suppression'  -- suppression | dp ([release] mode)
);
