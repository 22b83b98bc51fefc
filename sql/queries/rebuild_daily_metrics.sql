-- The rebuild of listing_metrics_daily for one tenant and one window, as ONE set-based
-- statement (SPEC 1.1). jobsd runs it inside a transaction holding the tenant's advisory
-- lock; bench/rebuild.sh runs this same file through psql (PREPARE ... AS <this file>).
--   $1 tenant uuid, $2 first day, $3 last day (business dates in $4), $4 time zone,
--   $5 the job_logs id recorded on every row this run writes.
-- Design notes:
-- * No join between two large inputs: the dense grid, the orders and the visits are merged
--   by GROUP BY, and "which rows change" is a set difference by GROUP BY over the computed
--   rows and a snapshot of the existing ones. Aggregation is hashed or sorted whatever the
--   planner believes about row counts, so a fresh table without statistics cannot push it
--   into a quadratic nested loop.
-- * Unchanged rows are never written nor locked (no WAL, no dead tuples).
-- * An order's business day is (ordered_at AT TIME ZONE $4)::date; the range on ordered_at
--   is one day wider on each side only to find the rows, the day itself decides.
-- * What counts (README "Definitions"): an order that jobsd_is_sale(status) (migration 0002:
--   paid, shipped, delivered, partially_refunded); gmv = quantity x unit_price of its items
--   (after discounts, without shipping), minus a partially refunded order's refunded_amount
--   shared among its items by value (never below 0). A day whose visits were read before it
--   ended 48 hours ago (Mercado Livre's delay, UTC days) is provisional.
WITH days AS (
    SELECT g::date AS date
    FROM generate_series($2::date, $3::date, interval '1 day') AS g
),
counted AS (
    -- The range on ordered_at alone is what the planner can estimate from statistics (an
    -- expression on it gets a default selectivity of 0.5%, and then a nested loop over
    -- order_items): the business day is decided after grouping, behind OFFSET 0 so the
    -- planner does not push it back down.
    SELECT listing_id, date, orders, units, gmv
    FROM (
        SELECT oi.listing_id,
               (o.ordered_at AT TIME ZONE $4::text)::date AS date,
               count(DISTINCT o.id)::int AS orders,
               sum(oi.quantity)::int AS units,
               sum(CASE WHEN o.refunded_amount > 0
                        THEN greatest(oi.quantity * oi.unit_price
                                      - o.refunded_amount * oi.quantity * oi.unit_price
                                        / nullif((SELECT sum(i2.quantity * i2.unit_price)
                                                  FROM order_items i2
                                                  WHERE i2.tenant_id = o.tenant_id
                                                    AND i2.order_id = o.id), 0), 0)
                        ELSE oi.quantity * oi.unit_price END) AS gmv
        FROM orders o
        JOIN order_items oi ON oi.tenant_id = o.tenant_id AND oi.order_id = o.id
        WHERE o.tenant_id = $1::uuid
          AND jobsd_is_sale(o.status)
          AND o.ordered_at >= (($2::date - 1)::timestamp AT TIME ZONE $4::text)
          AND o.ordered_at < (($3::date + 2)::timestamp AT TIME ZONE $4::text)
          AND oi.listing_id IS NOT NULL
        GROUP BY 1, 2
        OFFSET 0
    ) by_day
    WHERE date BETWEEN $2::date AND $3::date
),
visits AS (
    SELECT listing_id, date, visits,
           fetched_at < ((date + 3)::timestamp AT TIME ZONE 'UTC') AS provisional
    FROM listing_visits_daily
    WHERE tenant_id = $1::uuid AND date BETWEEN $2::date AND $3::date
),
qualifying AS (
    SELECT l.id
    FROM listings l
    WHERE l.tenant_id = $1::uuid
      AND (l.status <> 'deleted'
           OR l.id IN (SELECT listing_id FROM counted)
           OR l.id IN (SELECT listing_id FROM visits WHERE visits > 0))
),
merged AS (
    SELECT listing_id, date,
           max(visits) AS visits,
           sum(orders)::int AS orders,
           sum(units)::int AS units,
           sum(gmv)::numeric(14,2) AS gmv,
           bool_or(provisional) AS provisional
    FROM (
        SELECT q.id AS listing_id, d.date, NULL::int AS visits, 0 AS orders, 0 AS units,
               0::numeric AS gmv, false AS provisional
        FROM qualifying q CROSS JOIN days d
        UNION ALL
        SELECT listing_id, date, NULL, orders, units, gmv, false FROM counted
        UNION ALL
        SELECT listing_id, date, visits, 0, 0, 0, provisional
        FROM visits WHERE listing_id IN (SELECT id FROM qualifying)
    ) parts
    GROUP BY listing_id, date
),
computed AS (
    SELECT listing_id, date, visits, orders, units, gmv,
           CASE WHEN visits > 0 THEN round(orders::numeric / visits, 4) END::numeric(12,4)
               AS conversion,
           'internal_job'::text AS source,
           provisional
    FROM merged
),
existing AS MATERIALIZED (
    SELECT listing_id, date, visits, orders, units, gmv, conversion, source, provisional
    FROM listing_metrics_daily
    WHERE tenant_id = $1::uuid AND date BETWEEN $2::date AND $3::date
),
changed AS (
    SELECT listing_id, date, visits, orders, units, gmv, conversion, provisional
    FROM (
        SELECT true AS new_side, * FROM computed
        UNION ALL
        SELECT false, * FROM existing
    ) both_sides
    GROUP BY listing_id, date, visits, orders, units, gmv, conversion, source, provisional
    HAVING count(*) = 1 AND bool_and(new_side)
),
upserted AS (
    INSERT INTO listing_metrics_daily AS m
        (tenant_id, listing_id, date, visits, orders, units, gmv, conversion, source,
         provisional, job_log_id)
    SELECT $1::uuid, listing_id, date, visits, orders, units, gmv, conversion, 'internal_job',
           provisional, $5::uuid
    FROM changed
    ON CONFLICT (tenant_id, listing_id, date) DO UPDATE
    SET visits = EXCLUDED.visits,
        orders = EXCLUDED.orders,
        units = EXCLUDED.units,
        gmv = EXCLUDED.gmv,
        conversion = EXCLUDED.conversion,
        source = EXCLUDED.source,
        provisional = EXCLUDED.provisional,
        job_log_id = EXCLUDED.job_log_id,
        updated_at = now()
    RETURNING 1
),
deleted AS (
    DELETE FROM listing_metrics_daily m
    WHERE m.tenant_id = $1::uuid
      AND m.date BETWEEN $2::date AND $3::date
      AND m.listing_id NOT IN (SELECT id FROM qualifying)
    RETURNING 1
)
SELECT (SELECT count(*) FROM upserted) AS rows_upserted,
       (SELECT count(*) FROM deleted) AS rows_deleted,
       (SELECT count(*) FROM qualifying) AS listings_processed,
       (SELECT count(*) FROM days) AS days_processed
