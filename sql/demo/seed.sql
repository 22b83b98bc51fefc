-- Demo data for jobsd: one tenant ("Loja Demo", id 00000000-0000-4000-8000-000000000001),
-- a Mercado Livre connection without tokens, 300 listings, ~60 days of orders with items and
-- of daily visits, all RELATIVE TO TODAY in America/Sao_Paulo, so a rebuild of the last 30
-- days always has something to chew on. Loaded by scripts/demo.sh; by hand:
--
--   psql -X -v ON_ERROR_STOP=1 -q -f sql/demo/seed.sql "$DATABASE_URL" >/dev/null
--
-- Properties:
-- * Idempotent: the demo tenant's rows (raw facts AND listing_metrics_daily) are deleted
--   first, in the same transaction; job_logs are kept (they are history). Other tenants are
--   never touched.
-- * Reproducible: setseed(0.42) fixes random() and ids are md5 of a name, so a reload on the
--   same day yields the same rows, plus today's orders placed since; on another day, the
--   same data shifted to the new "today".
-- * Contents: 300 listings (277 active, 11 paused, 10 closed, 2 deleted: MLB3000002990,
--   deleted with a sale 3 days ago, qualifies for the rebuild; MLB3000003000 does not).
--   Visits (listing_visits_daily): a row for ~93% of the days from today-60 to yesterday
--   (today has none yet, as with Mercado Livre's lag; a missing row = unknown = NULL in the
--   metrics), zeros included (paused/closed listings: mostly 0); 18 listings, and the 2
--   deleted ones, have no visits row at all.
--   Orders: ~80 a day over 60 days, statuses by age (recent: pending/paid; older:
--   shipped/delivered; ~7% cancelled, ~3% refunded), ~20% placed between 21:00 and 23:59 in
--   Sao Paulo (the next day in UTC: the business-day rule matters), 1 to 3 items (~20% with
--   2+), prices in BRL (R$ 19.90 .. R$ 599.90), some coupon discounts.
-- * Plain SQL (no psql meta-commands); loads in about a second.

BEGIN;

SELECT setseed(0.42);

-- The reference day: "today" in the business time zone, fixed for the whole load.
CREATE TEMP TABLE demo_clock ON COMMIT DROP AS
SELECT (now() AT TIME ZONE 'America/Sao_Paulo')::date AS today;

-- ------------------------------------------------------------------ reset the demo tenant
INSERT INTO tenants (id, name, status)
VALUES ('00000000-0000-4000-8000-000000000001', 'Loja Demo', 'active')
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status;

DELETE FROM listing_metrics_daily WHERE tenant_id = '00000000-0000-4000-8000-000000000001';
DELETE FROM listing_visits_daily WHERE tenant_id = '00000000-0000-4000-8000-000000000001';
DELETE FROM order_items WHERE tenant_id = '00000000-0000-4000-8000-000000000001';
DELETE FROM orders WHERE tenant_id = '00000000-0000-4000-8000-000000000001';
DELETE FROM listings WHERE tenant_id = '00000000-0000-4000-8000-000000000001';
DELETE FROM marketplace_connections WHERE tenant_id = '00000000-0000-4000-8000-000000000001';

-- A fake seller; no real tokens (the rebuild never needs one; a sync would answer 422).
INSERT INTO marketplace_connections (id, tenant_id, provider, seller_id, nickname,
                                     access_token, refresh_token, expires_at, status)
VALUES (md5('jobsd-demo:connection')::uuid, '00000000-0000-4000-8000-000000000001',
        'mercadolivre', 987654321, 'LOJA_DEMO_TESTE', NULL, NULL, NULL, 'active');

-- ------------------------------------------------------------------ listings
-- A small catalogue: product, price range in BRL, Mercado Livre category.
CREATE TEMP TABLE demo_catalog (k int, product text, lo numeric, hi numeric, category text)
ON COMMIT DROP;
INSERT INTO demo_catalog VALUES
    (0, 'Fone de Ouvido Bluetooth', 59, 199, 'MLB196208'),
    (1, 'Capinha Silicone para Celular', 19, 49, 'MLB5177'),
    (2, 'Carregador Turbo USB-C 25W', 39, 129, 'MLB432437'),
    (3, 'Smartwatch Esportivo', 149, 599, 'MLB417704'),
    (4, 'Cabo HDMI 2.0 2 metros', 19, 59, 'MLB10181'),
    (5, 'Mouse Sem Fio Silencioso', 39, 149, 'MLB1714'),
    (6, 'Teclado Mecanico RGB', 199, 499, 'MLB418448'),
    (7, 'Garrafa Termica Inox 1L', 49, 129, 'MLB264051'),
    (8, 'Luminaria de Mesa LED', 59, 189, 'MLB1582'),
    (9, 'Kit Chaves de Precisao 24 pecas', 39, 119, 'MLB2526'),
    (10, 'Tenis de Corrida', 149, 399, 'MLB23332'),
    (11, 'Mochila para Notebook 15,6', 99, 299, 'MLB3813'),
    (12, 'Air Fryer 4L', 299, 599, 'MLB255080'),
    (13, 'Liquidificador 1200W', 129, 299, 'MLB4339'),
    (14, 'Panela de Pressao 4,5L', 119, 279, 'MLB412397');

CREATE TEMP TABLE demo_listing ON COMMIT DROP AS
SELECT n,
       md5('jobsd-demo:listing:' || n)::uuid AS id,
       'MLB' || (3000000000 + n * 10) AS external_id,
       c.product || ' - ' || (ARRAY['Preto', 'Branco', 'Azul', 'Cinza', 'Vermelho', 'Rosa',
                                    'Verde', 'Premium', 'Pro', 'Basico'])[1 + (n * 7) % 10]
           AS title,
       CASE WHEN n > 298 THEN 'deleted'
            WHEN n % 25 = 0 THEN 'paused'
            WHEN n % 27 = 13 THEN 'closed'
            ELSE 'active' END AS status,
       (floor(c.lo + random() * (c.hi - c.lo)) + 0.90)::numeric(14,2) AS price,
       c.category,
       -- Popularity: a long tail (1 .. ~55), damped for listings that cannot sell now.
       exp(random() * 4) AS pop,
       n % 17 = 3 AS no_visits,
       0.015 + random() * 0.035 AS conv,
       70 + floor(random() * 600)::int AS age_days
FROM generate_series(1, 300) AS n
JOIN demo_catalog c ON c.k = n % 15;

INSERT INTO listings (id, tenant_id, connection_id, external_id, title, status, access_status,
                      price, currency, available_quantity, sold_quantity, permalink,
                      category_id, listing_type_id, external_updated_at, last_synced_at,
                      created_at, updated_at)
SELECT l.id, '00000000-0000-4000-8000-000000000001', md5('jobsd-demo:connection')::uuid,
       l.external_id, l.title, l.status, 'accessible', l.price, 'BRL',
       CASE WHEN l.status = 'active' THEN 1 + (l.n * 13) % 80 ELSE 0 END,
       (l.pop * 12)::int,
       'https://produto.mercadolivre.com.br/MLB-' || substr(l.external_id, 4) || '-demo-_JM',
       l.category, CASE WHEN l.n % 3 = 0 THEN 'gold_pro' ELSE 'gold_special' END,
       now() - interval '2 days', now(),
       now() - make_interval(days => l.age_days), now() - interval '2 days'
FROM demo_listing l;

-- Sampling weights for order items: deleted listings never sell here (the one recent sale
-- of a deleted listing is inserted explicitly below); paused and closed ones rarely.
CREATE TEMP TABLE demo_weight ON COMMIT DROP AS
SELECT n, id, price, lo, lo + w AS hi
FROM (
    SELECT n, id, price, w, coalesce(sum(w) OVER (ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING
                                                  AND 1 PRECEDING), 0) AS lo
    FROM (
        SELECT n, id, price,
               pop * CASE status WHEN 'active' THEN 1.0 WHEN 'paused' THEN 0.1
                                 WHEN 'closed' THEN 0.05 ELSE 0 END AS w
        FROM demo_listing
    ) x
) y
WHERE w > 0;

-- ------------------------------------------------------------------ orders
-- ~80 orders a day (more on Mondays and Sundays), from today-59 to now. The whole of today
-- is drawn and only the orders already placed (ordered_at <= now()) are inserted, so the
-- random() sequence, hence every other row, does not depend on the time of day of the load.
CREATE TEMP TABLE demo_order ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY ordered_at, day_ago, k) AS n, *,
       100000000 + floor(random() * 90000000)::bigint AS buyer_id
FROM (
    SELECT d.day_ago, g.k, d.r_status, d.nitems,
           ((c.today - d.day_ago)::timestamp + make_interval(secs => d.secs))
               AT TIME ZONE 'America/Sao_Paulo' AS ordered_at
    FROM demo_clock c
    CROSS JOIN generate_series(0, 59) AS day_ago_s(day_ago_v)
    CROSS JOIN LATERAL generate_series(
        1, (65 + 30 * random()
            + CASE extract(isodow FROM c.today - day_ago_v) WHEN 1 THEN 15 WHEN 7 THEN 10
                                                            ELSE 0 END)::int) AS g(k)
    CROSS JOIN LATERAL (
        SELECT day_ago_v AS day_ago,
               random() AS r_status,
               CASE WHEN r < 0.80 THEN 1 WHEN r < 0.95 THEN 2 ELSE 3 END AS nitems,
               -- Time of day: 5% 00:00-07:00, 20% 21:00-23:59, 75% 07:00-21:00.
               CASE WHEN t < 0.05 THEN floor(random() * 7 * 3600)
                    WHEN t < 0.25 THEN 21 * 3600 + floor(random() * 3 * 3600)
                    ELSE 7 * 3600 + floor(random() * 14 * 3600) END AS secs
        FROM (SELECT random() AS r, random() AS t, g.k AS dep) rr
    ) d
) o;

INSERT INTO orders (id, tenant_id, connection_id, external_id, status, external_status,
                    currency, buyer_id, ordered_at, paid_at, closed_at, external_updated_at,
                    created_at, updated_at)
SELECT md5('jobsd-demo:order:' || o.n)::uuid, '00000000-0000-4000-8000-000000000001',
       md5('jobsd-demo:connection')::uuid, 2000010000000 + o.n, s.status,
       CASE s.status WHEN 'pending' THEN 'payment_in_process'
                     WHEN 'cancelled' THEN 'cancelled'
                     WHEN 'refunded' THEN 'partially_refunded'
                     ELSE 'paid' END,
       'BRL', o.buyer_id, o.ordered_at,
       CASE WHEN s.status NOT IN ('pending', 'cancelled')
            THEN o.ordered_at + interval '3 minutes' END,
       CASE WHEN s.status <> 'pending' THEN o.ordered_at + interval '5 minutes' END,
       o.ordered_at + interval '1 hour', o.ordered_at, o.ordered_at
FROM demo_order o
CROSS JOIN LATERAL (
    SELECT CASE
        -- Disjoint bands of one draw: ~7% cancelled, pending mostly among recent orders,
        -- ~3% refunded among older ones, the rest counted (paid/shipped/delivered by age).
        WHEN o.r_status < 0.07 THEN 'cancelled'
        WHEN o.day_ago <= 2 AND o.r_status < 0.19 THEN 'pending'
        WHEN o.day_ago > 2 AND o.r_status < 0.09 THEN 'pending'
        WHEN o.day_ago >= 7 AND o.r_status < 0.12 THEN 'refunded'
        WHEN o.day_ago <= 2 THEN 'paid'
        WHEN o.day_ago <= 8 THEN CASE WHEN o.r_status < 0.35 THEN 'paid'
                                      WHEN o.r_status < 0.80 THEN 'shipped'
                                      ELSE 'delivered' END
        ELSE CASE WHEN o.r_status < 0.30 THEN 'shipped' ELSE 'delivered' END
    END AS status
) s
WHERE o.ordered_at <= now();

-- Items: one draw per item against the cumulative weights (a listing drawn twice for the
-- same order is kept once), quantity mostly 1, some coupon discounts.
CREATE TEMP TABLE demo_draw ON COMMIT DROP AS
SELECT o.n AS order_n, i, random() * (SELECT max(hi) FROM demo_weight) AS r,
       random() AS r_qty, random() AS r_disc
FROM demo_order o
CROSS JOIN LATERAL generate_series(1, o.nitems) AS i;

INSERT INTO order_items (tenant_id, order_id, listing_id, listing_external_id, title, quantity,
                         unit_price, full_unit_price)
SELECT DISTINCT ON (d.order_n, w.n)
       '00000000-0000-4000-8000-000000000001', md5('jobsd-demo:order:' || d.order_n)::uuid,
       w.id, l.external_id, l.title,
       CASE WHEN d.r_qty < 0.85 THEN 1 WHEN d.r_qty < 0.97 THEN 2 ELSE 3 END,
       CASE WHEN d.r_disc < 0.10 THEN round(w.price * 0.9, 2) ELSE w.price END,
       w.price
FROM demo_draw d
JOIN demo_order o ON o.n = d.order_n AND o.ordered_at <= now()
JOIN demo_weight w ON d.r >= w.lo AND d.r < w.hi
JOIN demo_listing l ON l.n = w.n
ORDER BY d.order_n, w.n, d.i;

-- The deleted listing with a recent sale: sold 3 days ago at 14:30, shipped, then the seller
-- deleted the listing. The rebuild must still count it.
INSERT INTO orders (id, tenant_id, connection_id, external_id, status, external_status,
                    total_amount, paid_amount, currency, buyer_id, ordered_at, paid_at,
                    closed_at, created_at, updated_at)
SELECT md5('jobsd-demo:order:deleted-listing-sale')::uuid,
       '00000000-0000-4000-8000-000000000001', md5('jobsd-demo:connection')::uuid,
       2000019999999, 'shipped', 'paid', 2 * l.price, 2 * l.price, 'BRL', 123456789, t.at,
       t.at + interval '2 minutes', t.at + interval '4 minutes', t.at, t.at
FROM demo_listing l
CROSS JOIN demo_clock c
CROSS JOIN LATERAL (
    SELECT ((c.today - 3)::timestamp + time '14:30') AT TIME ZONE 'America/Sao_Paulo' AS at
) t
WHERE l.n = 299;

INSERT INTO order_items (tenant_id, order_id, listing_id, listing_external_id, title, quantity,
                         unit_price, full_unit_price)
SELECT '00000000-0000-4000-8000-000000000001',
       md5('jobsd-demo:order:deleted-listing-sale')::uuid, l.id, l.external_id, l.title, 2,
       l.price, l.price
FROM demo_listing l
WHERE l.n = 299;

UPDATE orders o
SET total_amount = t.total,
    paid_amount = CASE WHEN o.status IN ('pending', 'cancelled') THEN NULL ELSE t.total END
FROM (
    SELECT order_id, sum(quantity * unit_price) AS total
    FROM order_items
    WHERE tenant_id = '00000000-0000-4000-8000-000000000001'
    GROUP BY order_id
) t
WHERE o.tenant_id = '00000000-0000-4000-8000-000000000001' AND o.id = t.order_id;

-- ------------------------------------------------------------------ visits
-- Per UTC day as Mercado Livre reports them, from today-60 to yesterday; ~7% of the days
-- missing (the API did not answer: unknown), none at all for 18 listings and the deleted
-- ones. Expected visits follow the listing's expected sales and its conversion rate.
INSERT INTO listing_visits_daily (tenant_id, listing_id, date, visits, fetched_at)
SELECT '00000000-0000-4000-8000-000000000001', v.id, v.date, v.visits, now()
FROM (
    SELECT l.id, c.today - g AS date, random() AS r_present,
           CASE l.status
               WHEN 'active' THEN floor(l.pop / (SELECT max(hi) FROM demo_weight) * 100 / l.conv
                                        * (0.5 + random()))::int
               WHEN 'paused' THEN floor(random() * 3)::int
               ELSE floor(random() * 1.3)::int
           END AS visits
    FROM demo_listing l
    CROSS JOIN demo_clock c
    CROSS JOIN generate_series(1, 60) AS g
    WHERE NOT l.no_visits AND l.status <> 'deleted'
) v
WHERE v.r_present < 0.93;

COMMIT;

-- What was loaded (one row per table).
SELECT 'listings' AS "table", count(*) AS rows FROM listings
 WHERE tenant_id = '00000000-0000-4000-8000-000000000001'
UNION ALL
SELECT 'orders', count(*) FROM orders WHERE tenant_id = '00000000-0000-4000-8000-000000000001'
UNION ALL
SELECT 'order_items', count(*) FROM order_items
 WHERE tenant_id = '00000000-0000-4000-8000-000000000001'
UNION ALL
SELECT 'listing_visits_daily', count(*) FROM listing_visits_daily
 WHERE tenant_id = '00000000-0000-4000-8000-000000000001';
