-- Pathlink analyst warehouse: return-on-investment views (issue 19). Version 1.
-- Applied after schemas/warehouse_views.sql by pipelines/warehouse/roi.py:create_roi_views,
-- which first defines the window macros from [roi] in pathlink.toml:
--   roi_pre_quarters()  quarters before the entry quarter summed as "before" (default 4)
--   roi_post_first(), roi_post_last()  quarters after the exit quarter summed as "after"
--                                      (default 2 and 5)
-- Every view here is person-level or unsuppressed; evaluators get figures only through the
-- released_* relations (pipelines/warehouse/roi.py, pipelines/warehouse/disclosure.py).
-- Definitions: docs/warehouse.md, "Return on investment".

-- ---- earnings before entry and after exit -----------------------------------------------
-- Earnings cohort: exits of the outcome cohort whose "before" quarters (the roi_pre_quarters()
-- quarters before the entry quarter) and "after" quarters (exit quarter + roi_post_first() to
-- + roi_post_last()) all lie inside the UI wage data.
CREATE OR REPLACE VIEW earnings_cohort AS
SELECT x.*, pl_month_to_quarter_index(x.entry_month) AS entry_qi
FROM exit_cohort AS x, coverage AS c
WHERE pl_month_to_quarter_index(x.entry_month) - roi_pre_quarters() >= c.wage_first_qi
  AND x.exit_qi + roi_post_last() <= c.wage_last_qi;

-- One row per earnings-cohort exit: total UI wages (all employers) before and after; a quarter
-- without a wage record counts as $0, as it does for the employment measures.
CREATE OR REPLACE VIEW outcome_earnings_change AS
WITH sums AS (
    SELECT
        x.enrollment_key,
        coalesce(sum(w.earnings) FILTER (
            WHERE w.qi BETWEEN x.entry_qi - roi_pre_quarters() AND x.entry_qi - 1), 0)
            AS before_total,
        coalesce(sum(w.earnings) FILTER (
            WHERE w.qi BETWEEN x.exit_qi + roi_post_first() AND x.exit_qi + roi_post_last()), 0)
            AS after_total
    FROM earnings_cohort AS x
    LEFT JOIN person_wage_quarter AS w ON w.person_id = x.person_id
    GROUP BY x.enrollment_key
)
SELECT
    x.enrollment_key, x.person_id, x.partner_id, x.program_id, x.funding_stream, x.sector,
    x.exit_month, x.exit_quarter,
    s.before_total::DOUBLE AS earnings_before,
    s.after_total::DOUBLE AS earnings_after,
    (s.after_total - s.before_total)::DOUBLE AS earnings_change,
    s.after_total > s.before_total AS earnings_higher
FROM earnings_cohort AS x
JOIN sums AS s USING (enrollment_key);

-- ---- costs -------------------------------------------------------------------------------
-- Each program's costs by quarter. A quarter is complete for a program when it was sent as a
-- quarter, or as all three of its months (any funding stream or category).
CREATE OR REPLACE VIEW program_cost_quarter AS
SELECT
    program_id, partner_id, cost_quarter, pl_quarter_index(cost_quarter) AS qi,
    sum(amount)::DOUBLE AS amount,
    bool_or(cost_period = cost_quarter)
        OR count(DISTINCT cost_period) FILTER (WHERE cost_period <> cost_quarter) = 3
        AS complete
FROM program_cost
GROUP BY program_id, partner_id, cost_quarter;

-- The ROI window of each program: its complete cost quarters whose exits are all measurable
-- (the same conditions as exit_cohort: Q+2 not before the first wage quarter, Q+4 in the wage
-- data, 12 months after the quarter's last month in partner data). Costs and outcomes are
-- compared over these quarters only.
CREATE OR REPLACE VIEW roi_window AS
SELECT pq.program_id, pq.partner_id, pq.qi, pq.cost_quarter
FROM program_cost_quarter AS pq, coverage AS c
WHERE pq.complete
  AND pq.qi + 2 >= c.wage_first_qi
  AND pq.qi + 4 <= c.wage_last_qi
  AND pq.qi * 3 + 2 + 12 <= pl_month_index(c.partner_data_through_month);

-- Cost rows inside their program's window.
CREATE OR REPLACE VIEW roi_cost AS
SELECT p.partner_id, p.program_id, p.funding_stream, p.cost_category, w.qi,
       p.amount::DOUBLE AS amount
FROM program_cost AS p
JOIN roi_window AS w
  ON w.program_id = p.program_id AND w.qi = pl_quarter_index(p.cost_quarter);

-- Participants of a program's window: enrollments active in at least one window quarter. A
-- completer is a cohort exit (no exclusion reason; outcomes measurable) in a window quarter;
-- employed_q2 and credential (in education or training, credential within a year) are that
-- exit's outcomes as in outcome_exit.
CREATE OR REPLACE VIEW roi_enrollment AS
SELECT
    ep.enrollment_key, ep.person_id, ep.partner_id, ep.program_id, ep.funding_stream,
    ep.sector, ep.exit_quarter,
    coalesce(done.completer, false) AS completer,
    coalesce(done.completer AND o.employed_q2, false) AS employed_q2,
    coalesce(done.completer AND o.in_education_or_training AND o.credential_within_year, false)
        AS credential
FROM enrollment_episode AS ep
LEFT JOIN outcome_exit AS o ON o.enrollment_key = ep.enrollment_key
LEFT JOIN (
    SELECT DISTINCT w.program_id, w.qi, true AS completer FROM roi_window AS w
) AS done ON o.enrollment_key IS NOT NULL AND done.program_id = ep.program_id
         AND done.qi = ep.exit_qi
WHERE EXISTS (
    SELECT 1 FROM roi_window AS w
    WHERE w.program_id = ep.program_id
      AND w.qi BETWEEN pl_month_to_quarter_index(ep.entry_month) AND ep.end_mi // 3
);
