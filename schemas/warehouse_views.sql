-- Pathlink evaluator warehouse: outcome views (issue 6). Version 1.
-- Applied after schemas/warehouse.sql and schemas/warehouse_facts.sql. Every view here is
-- person-level (unsuppressed); evaluators get figures only through the `released_*` tables
-- written by pipelines/disclosure.py. Definitions: docs/warehouse.md.

-- ---- period helpers: months 'YYYY-MM' and quarters 'YYYYQn' as integer indexes ----------
CREATE OR REPLACE MACRO pl_month_index(ym) AS
    CAST(substr(ym, 1, 4) AS INTEGER) * 12 + CAST(substr(ym, 6, 2) AS INTEGER) - 1;
CREATE OR REPLACE MACRO pl_quarter_index(yq) AS
    CAST(substr(yq, 1, 4) AS INTEGER) * 4 + CAST(substr(yq, 6, 1) AS INTEGER) - 1;
CREATE OR REPLACE MACRO pl_month_to_quarter_index(ym) AS
    CAST(substr(ym, 1, 4) AS INTEGER) * 4 + (CAST(substr(ym, 6, 2) AS INTEGER) - 1) // 3;
CREATE OR REPLACE MACRO pl_quarter_label(qi) AS
    CAST(qi // 4 AS VARCHAR) || 'Q' || CAST(qi % 4 + 1 AS VARCHAR);

-- ---- data coverage ----------------------------------------------------------------------
-- wage_*: quarters present in the UI wage data; partner_data_through_month: the latest month
-- any partner fact refers to (partner facts are assumed complete up to that month).
CREATE OR REPLACE VIEW coverage AS
SELECT
    (SELECT min(pl_quarter_index(year_quarter)) FROM wage) AS wage_first_qi,
    (SELECT max(pl_quarter_index(year_quarter)) FROM wage) AS wage_last_qi,
    (SELECT max(m) FROM (
        SELECT max(greatest(entry_month, coalesce(exit_month, entry_month))) AS m
        FROM enrollment
        UNION ALL SELECT max(service_month) FROM service
        UNION ALL SELECT max(attained_month) FROM credential
        UNION ALL SELECT max(assessment_month) FROM assessment
        UNION ALL SELECT max(start_month) FROM employment
        UNION ALL SELECT max(gain_month) FROM skill_gain)) AS partner_data_through_month;

-- ---- enrollment episodes ----------------------------------------------------------------
CREATE OR REPLACE VIEW enrollment_episode AS
SELECT
    e.person_id || '|' || e.program_id || '|' || e.entry_month AS enrollment_key,
    e.* REPLACE (
        -- in education or training: flagged on the enrollment, or any training_* service
        -- (services contract codes) from the enrolling partner during the enrollment
        e.in_education_or_training OR EXISTS (
            SELECT 1 FROM service AS s
            WHERE s.person_id = e.person_id AND s.partner_id = e.partner_id
              AND s.service_type LIKE 'training\_%' ESCAPE '\'
              AND pl_month_index(s.service_month)
                  BETWEEN pl_month_index(e.entry_month)
                      AND pl_month_index(coalesce(e.exit_month, '9999-12'))
        ) AS in_education_or_training
    ),
    pl_month_index(e.entry_month) AS entry_mi,
    pl_month_index(coalesce(e.exit_month,
                            (SELECT partner_data_through_month FROM coverage))) AS end_mi,
    CASE WHEN e.exit_month IS NOT NULL THEN pl_quarter_index(e.exit_quarter) END AS exit_qi
FROM enrollment AS e;

-- Outcome cohort: exits with no exclusion reason whose 4th quarter after exit is covered by
-- the wage data AND whose 12 months after exit are covered by partner data. One cohort for
-- every exit-based measure (see docs/warehouse.md, "why one cohort").
CREATE OR REPLACE VIEW exit_cohort AS
SELECT ep.*
FROM enrollment_episode AS ep, coverage AS c
WHERE ep.exit_month IS NOT NULL
  AND ep.exit_exclusion_reason IS NULL
  AND ep.exit_qi + 4 <= c.wage_last_qi
  AND ep.exit_qi + 2 >= c.wage_first_qi
  AND pl_month_index(ep.exit_month) + 12 <= pl_month_index(c.partner_data_through_month);

-- ---- wages by person and quarter --------------------------------------------------------
CREATE OR REPLACE VIEW person_wage_quarter AS
SELECT
    person_id,
    pl_quarter_index(year_quarter) AS qi,
    year_quarter,
    sum(wages) AS earnings,
    bool_or(wages > 0) AS employed,
    list(DISTINCT employer_key ORDER BY employer_key) FILTER (WHERE wages > 0) AS employer_keys
FROM wage
GROUP BY person_id, year_quarter;

-- ---- exit-based outcomes, one row per cohort exit ---------------------------------------
CREATE OR REPLACE VIEW outcome_exit AS
SELECT
    x.enrollment_key, x.person_id, x.partner_id, x.program_id, x.funding_stream, x.sector,
    x.exit_month, x.exit_quarter, x.in_education_or_training,
    coalesce(q2.employed, false) AS employed_q2,
    coalesce(q4.employed, false) AS employed_q4,
    CASE WHEN coalesce(q2.employed, false) THEN q2.earnings END AS earnings_q2,
    coalesce(q2.employed, false)
        AND coalesce(q4.employed, false)
        AND len(list_intersect(q2.employer_keys, q4.employer_keys)) > 0 AS retained_same_employer,
    EXISTS (
        SELECT 1 FROM credential AS cr
        WHERE cr.person_id = x.person_id
          AND pl_month_index(cr.attained_month) BETWEEN x.entry_mi
                                                    AND pl_month_index(x.exit_month) + 12
    ) AS credential_within_year
FROM exit_cohort AS x
LEFT JOIN person_wage_quarter AS q2 ON q2.person_id = x.person_id AND q2.qi = x.exit_qi + 2
LEFT JOIN person_wage_quarter AS q4 ON q4.person_id = x.person_id AND q4.qi = x.exit_qi + 4;

-- ---- measurable skill gains -------------------------------------------------------------
-- Partner-reported gains, plus: an assessment whose score is above the lowest earlier score
-- of the same person, partner and competency (one gain per such later assessment month), plus
-- every credential attained (gain_type 'credential').
CREATE OR REPLACE VIEW skill_gain_all AS
SELECT person_id, partner_id, gain_month, gain_type, 'reported' AS gain_source
FROM skill_gain
UNION ALL
SELECT DISTINCT a.person_id, a.partner_id, a.assessment_month, 'assessment_level_gain',
       'assessment'
FROM assessment AS a
WHERE a.score > (SELECT min(b.score) FROM assessment AS b
                 WHERE b.person_id = a.person_id AND b.partner_id = a.partner_id
                   AND b.competency = a.competency AND b.assessment_month < a.assessment_month)
UNION ALL
SELECT person_id, partner_id, attained_month, 'credential', 'credential'
FROM credential;

-- Enrollments in education or training, with whether a gain at the same partner fell inside
-- the enrollment (entry month to exit month, or to the partner data month if still enrolled).
CREATE OR REPLACE VIEW outcome_skill_gain AS
SELECT
    ep.enrollment_key, ep.person_id, ep.partner_id, ep.program_id, ep.funding_stream,
    ep.sector, ep.exit_quarter,
    EXISTS (
        SELECT 1 FROM skill_gain_all AS g
        WHERE g.person_id = ep.person_id AND g.partner_id = ep.partner_id
          AND pl_month_index(g.gain_month) BETWEEN ep.entry_mi AND ep.end_mi
    ) AS skill_gain
FROM enrollment_episode AS ep
WHERE ep.in_education_or_training;

-- ---- services ---------------------------------------------------------------------------
-- Services a person received from the enrolling partner during the enrollment.
CREATE OR REPLACE VIEW enrollment_service AS
SELECT ep.enrollment_key, s.service_type, count(*) AS services, sum(s.amount) AS amount
FROM enrollment_episode AS ep
JOIN service AS s
  ON s.person_id = ep.person_id AND s.partner_id = ep.partner_id
 AND pl_month_index(s.service_month) BETWEEN ep.entry_mi AND ep.end_mi
GROUP BY ep.enrollment_key, s.service_type;

-- Supportive services: contract code 'supportive_service', or a detailed supportive type
-- (transportation, childcare, housing, ...) when a partner reports one.
CREATE OR REPLACE VIEW outcome_service AS
SELECT
    ep.enrollment_key, ep.person_id, ep.partner_id, ep.program_id, ep.funding_stream,
    ep.sector, ep.exit_quarter,
    ep.enrollment_key IN (SELECT enrollment_key FROM enrollment_service) AS any_service,
    ep.enrollment_key IN (
        SELECT enrollment_key FROM enrollment_service
        WHERE service_type IN ('supportive_service', 'transportation', 'childcare', 'housing',
                               'work_supplies', 'needs_related_payment', 'emergency_assistance')
    ) AS supportive_service
FROM enrollment_episode AS ep;

-- ---- co-enrollment ----------------------------------------------------------------------
CREATE OR REPLACE VIEW person_partner AS
SELECT person_id, partner_id, min(entry_month) AS first_entry_month
FROM enrollment GROUP BY person_id, partner_id;

CREATE OR REPLACE VIEW outcome_coenrollment AS
SELECT ep.person_id, ep.partner_id, ep.program_id, ep.funding_stream, ep.sector,
       (SELECT count(*) FROM person_partner AS pp WHERE pp.person_id = ep.person_id) >= 2
           AS co_enrolled
FROM enrollment_episode AS ep;

CREATE OR REPLACE VIEW coenrollment_pair AS
SELECT a.partner_id AS partner_a, b.partner_id AS partner_b, count(*) AS persons
FROM person_partner AS a
JOIN person_partner AS b ON a.person_id = b.person_id AND a.partner_id <= b.partner_id
GROUP BY a.partner_id, b.partner_id;

-- ---- reporting groups of persons (long form) --------------------------------------------
-- race_ethnicity: Hispanic/Latino of any race, otherwise the race category; 'unknown' when
-- not reported. barrier: one row per barrier flag that is true (groups overlap), 'none' when
-- every reported flag is false, 'unknown' when no flag is reported.
CREATE OR REPLACE VIEW person_group AS
WITH p AS (
    SELECT pe.person_id, pe.sex, pp.* EXCLUDE (person_id)
    FROM person AS pe LEFT JOIN person_profile AS pp USING (person_id)
)
SELECT person_id, 'race_ethnicity' AS dimension,
       CASE WHEN hispanic_latino THEN 'hispanic_latino'
            WHEN race_category IS NOT NULL THEN race_category
            ELSE 'unknown' END AS grp
FROM p
UNION ALL
SELECT person_id, 'sex', coalesce(sex, 'unknown') FROM p
UNION ALL
SELECT person_id, 'age_band', coalesce(age_band_first_entry, 'unknown') FROM p
UNION ALL
SELECT person_id, 'barrier', flag FROM (
    UNPIVOT (SELECT person_id, returning_citizen, homeless, low_income, english_learner,
                    basic_skills_deficient, single_parent, foster_care FROM p)
    ON returning_citizen, homeless, low_income, english_learner, basic_skills_deficient,
       single_parent, foster_care
    INTO NAME flag VALUE is_set)
WHERE is_set
UNION ALL
SELECT person_id, 'barrier',
       CASE WHEN coalesce(returning_citizen, homeless, low_income, english_learner,
                          basic_skills_deficient, single_parent, foster_care) IS NULL
            THEN 'unknown' ELSE 'none' END
FROM p
WHERE NOT coalesce(returning_citizen OR homeless OR low_income OR english_learner
                   OR basic_skills_deficient OR single_parent OR foster_care, false);

-- ---- person-by-quarter timeline ---------------------------------------------------------
-- One row per person and quarter from the person's first enrollment quarter to the last
-- covered quarter (wage or partner data, whichever is later).
CREATE OR REPLACE VIEW person_quarter AS
WITH bounds AS (
    SELECT ep.person_id,
           least(min(pl_month_to_quarter_index(ep.entry_month)),
                 coalesce(min(w.qi), min(pl_month_to_quarter_index(ep.entry_month))))
               AS first_qi,
           greatest(coalesce(max(c.wage_last_qi), 0),
                    max(pl_month_to_quarter_index(c.partner_data_through_month))) AS last_qi
    FROM enrollment_episode AS ep
    CROSS JOIN coverage AS c
    LEFT JOIN person_wage_quarter AS w ON w.person_id = ep.person_id
    GROUP BY ep.person_id
),
grid AS (
    SELECT person_id, unnest(range(first_qi, last_qi + 1)) AS qi FROM bounds
)
SELECT
    g.person_id,
    pl_quarter_label(g.qi) AS year_quarter,
    (SELECT count(DISTINCT ep.partner_id) FROM enrollment_episode AS ep
     WHERE ep.person_id = g.person_id
       AND g.qi BETWEEN pl_month_to_quarter_index(ep.entry_month)
                    AND ep.end_mi // 3) AS partners_enrolled,
    (SELECT count(*) FROM enrollment_episode AS ep
     WHERE ep.person_id = g.person_id AND ep.exit_qi = g.qi) AS exits,
    coalesce(w.employed, false) AS employed,
    w.earnings,
    coalesce(len(w.employer_keys), 0) AS employers,
    (SELECT count(*) FROM service AS s
     WHERE s.person_id = g.person_id
       AND pl_month_to_quarter_index(s.service_month) = g.qi) AS services,
    (SELECT count(*) FROM credential AS cr
     WHERE cr.person_id = g.person_id
       AND pl_month_to_quarter_index(cr.attained_month) = g.qi) AS credentials
FROM grid AS g
LEFT JOIN person_wage_quarter AS w ON w.person_id = g.person_id AND w.qi = g.qi;
