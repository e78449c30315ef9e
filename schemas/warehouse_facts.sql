-- Pathlink evaluator warehouse: fact and dimension tables (issue 6).
-- Applied to the published file AFTER schemas/warehouse.sql. Version 1.
--
-- Rules for every table here:
--   * person_id is the random pseudonymous id from `person`; no names, DOBs, SSNs, contact
--     details, addresses, partner record ids or tokens.
--   * Event dates are published at MONTH precision, 'YYYY-MM'; wage quarters and exit quarters
--     as 'YYYYQn' (e.g. 2025Q3). Day of month is never published.
--   * employer_key is an opaque keyed hash supplied upstream; it is never an employer id/FEIN.

-- Person attributes used only for reporting groups (extends `person`, one row per person).
CREATE TABLE person_profile (
    person_id              VARCHAR PRIMARY KEY,
    hispanic_latino        BOOLEAN,      -- NULL: declined / not reported
    race_category          VARCHAR,      -- american_indian_alaska_native | asian |
                                         -- black_african_american |
                                         -- native_hawaiian_pacific_islander | white |
                                         -- two_or_more_races | NULL (declined / not reported)
    age_band_first_entry   VARCHAR,      -- 14-17 | 18-24 | 25-34 | 35-44 | 45-54 | 55+ | NULL
    returning_citizen      BOOLEAN,
    homeless               BOOLEAN,
    low_income             BOOLEAN,
    english_learner        BOOLEAN,
    basic_skills_deficient BOOLEAN,
    single_parent          BOOLEAN,
    foster_care            BOOLEAN,
    CHECK (age_band_first_entry IS NULL OR age_band_first_entry IN
           ('14-17', '18-24', '25-34', '35-44', '45-54', '55+'))
);

-- Program dimension: one row per partner program.
CREATE TABLE program (
    program_id     VARCHAR PRIMARY KEY,   -- '<partner_id>:<partner program code>'
    partner_id     VARCHAR NOT NULL,
    program_name   VARCHAR,
    funding_stream VARCHAR,
    sector         VARCHAR
);

-- One row per enrollment (period of participation in one program at one partner).
CREATE TABLE enrollment (
    person_id                VARCHAR NOT NULL,
    partner_id               VARCHAR NOT NULL,
    program_id               VARCHAR NOT NULL,
    funding_stream           VARCHAR NOT NULL,
    sector                   VARCHAR,
    entry_month              VARCHAR NOT NULL,   -- YYYY-MM
    exit_month               VARCHAR,            -- YYYY-MM, NULL while enrolled
    exit_quarter             VARCHAR,            -- YYYYQn of exit_month
    exit_exclusion_reason    VARCHAR,            -- non-NULL: excluded from exit-based measures
                                                 -- (enrollments contract codes: institutionalized,
                                                 -- health_medical, deceased, ...)
    in_education_or_training BOOLEAN NOT NULL DEFAULT false,  -- views also treat any
                                                 -- training_* service in the enrollment as true
    CHECK (funding_stream IN ('wioa_adult', 'wioa_dislocated_worker', 'wioa_youth',
                              'careerconnect', 'summer_youth_employment',
                              'foundation_career_pathways')),
    CHECK (sector IS NULL OR sector IN ('healthcare', 'it', 'manufacturing', 'construction',
                                        'clean_energy', 'business_financial_services',
                                        'transportation')),
    CHECK (regexp_full_match(entry_month, '\d{4}-(0[1-9]|1[0-2])')),
    CHECK (exit_month IS NULL OR regexp_full_match(exit_month, '\d{4}-(0[1-9]|1[0-2])')),
    CHECK (exit_quarter IS NULL OR regexp_full_match(exit_quarter, '\d{4}Q[1-4]')),
    CHECK ((exit_month IS NULL) = (exit_quarter IS NULL))
);

-- Supportive and other services (one row per service event, month precision).
CREATE TABLE service (
    person_id     VARCHAR NOT NULL,
    partner_id    VARCHAR NOT NULL,
    service_month VARCHAR NOT NULL,               -- YYYY-MM
    service_type  VARCHAR NOT NULL,               -- services contract codes:
                                                  -- career_service_basic | training_* |
                                                  -- work_experience | supportive_service | ...
    amount        DECIMAL(12, 2)                  -- dollars, NULL when not a payment
);

CREATE TABLE credential (
    person_id       VARCHAR NOT NULL,
    partner_id      VARCHAR NOT NULL,
    credential_type VARCHAR NOT NULL,             -- credentials contract codes:
                                                  -- secondary_diploma_or_equivalent |
                                                  -- occupational_certificate | ...
    attained_month  VARCHAR NOT NULL              -- YYYY-MM
);

-- Jobs reported by partners (placements, self-reported employment).
CREATE TABLE employment (
    person_id    VARCHAR NOT NULL,
    partner_id   VARCHAR NOT NULL,
    naics_sector VARCHAR,                         -- 2-digit NAICS sector code
    start_month  VARCHAR NOT NULL,                -- YYYY-MM
    end_month    VARCHAR,
    hourly_wage  DECIMAL(8, 2),
    weekly_hours DECIMAL(5, 1)
);

-- Quarterly UI wage records matched to persons (state wage file).
CREATE TABLE wage (
    person_id    VARCHAR NOT NULL,
    year_quarter VARCHAR NOT NULL,                -- YYYYQn
    employer_key VARCHAR NOT NULL,                -- keyed hash, opaque
    wages        DECIMAL(12, 2) NOT NULL,
    CHECK (regexp_full_match(year_quarter, '\d{4}Q[1-4]'))
);

CREATE TABLE assessment (
    person_id        VARCHAR NOT NULL,
    partner_id       VARCHAR NOT NULL,
    competency       VARCHAR NOT NULL,            -- e.g. reading, math, digital_literacy
    score            INTEGER NOT NULL,            -- 1 (beginning) .. 4 (proficient)
    assessment_month VARCHAR NOT NULL,            -- YYYY-MM
    CHECK (score BETWEEN 1 AND 4)
);

-- Skill gains reported directly by partners (e.g. EFL gains, transcripts, milestones).
-- Gains derived from assessments and credentials are added by the view `skill_gain_all`
-- (schemas/warehouse_views.sql); this table may stay empty.
CREATE TABLE skill_gain (
    person_id  VARCHAR NOT NULL,
    partner_id VARCHAR NOT NULL,
    gain_month VARCHAR NOT NULL,                  -- YYYY-MM
    gain_type  VARCHAR NOT NULL                   -- educational_functioning_level | transcript
                                                  -- | secondary_diploma | training_milestone |
                                                  -- skills_progression | ...
);

-- What each partner program spent (program_costs contract; no person data). One row per
-- program, cost period, funding stream and category as the partner sent it (a later drop's
-- row for the same key replaces the earlier one).
CREATE TABLE program_cost (
    partner_id     VARCHAR NOT NULL,
    program_id     VARCHAR NOT NULL,              -- '<partner_id>:<partner program code>'
    cost_period    VARCHAR NOT NULL,              -- YYYY-MM or YYYYQn, as sent
    cost_quarter   VARCHAR NOT NULL,              -- YYYYQn holding cost_period
    funding_stream VARCHAR NOT NULL,
    cost_category  VARCHAR NOT NULL,              -- training | supportive_services | staff
    amount         DECIMAL(14, 2) NOT NULL,       -- dollars (negative: a correction)
    CHECK (regexp_full_match(cost_period, '\d{4}(-(0[1-9]|1[0-2])|Q[1-4])')),
    CHECK (regexp_full_match(cost_quarter, '\d{4}Q[1-4]')),
    CHECK (cost_category IN ('training', 'supportive_services', 'staff'))
);
