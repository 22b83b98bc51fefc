#!/usr/bin/env node
// The operator console in a real browser (issue 21): Debian's headless Chromium driven over
// the DevTools protocol by puppeteer-core, against a real `jobsd serve` that serves the page.
//
//   node tests/browser/console.test.mjs --modules NODE_MODULES --jobsd BIN --artifacts DIR
//        [--mode auto|page|e2e]
//
// JOBSD_TEST_PG_URL names the PostgreSQL the suite runs (a database is created and dropped);
// CHROMIUM the browser (default /usr/bin/chromium). scripts/test.sh runs it as its own stage.
//
// Two modes, the same walk through the page:
//  * e2e: jobsd's real operator API (`jobsd routes` lists /api/v1/operator/fleet) with real
//    PostgreSQL and an operator JWT from `jobsd token --operator`: the data is seeded in
//    job_logs (a stale tenant, a failed rebuild, a queued fleet child held back by
//    FLEET_MAX_RUNNING=1 behind a running sibling), the retry and the cancel are real.
//  * page: the API answered inside the browser by stubs that follow docs/openapi.yaml's
//    operator contract (request interception), the page itself from jobsd. This is what runs
//    while jobsd has no operator API yet; `auto` (the default) picks e2e when it has one.
// The walk: open /console (first paint measured, < 300 ms; the three files < 150 KB), enter
// the token, see the fleet with the stale tenant first and marked, list the failed jobs,
// open the failed one, retry it (confirmation) and watch the new job succeed, cancel a queued
// job (confirmation) and see it never run, the trends' SVG charts, the fleet at 390 px wide,
// the keyboard focus. Screenshots of every view go to --artifacts. It fails on any console
// error or page error and on any request outside jobsd's origin.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const args = process.argv.slice(2);
const opt = { mode: 'auto' };
for (let i = 0; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];
if (!opt.modules || !opt.jobsd || !opt.artifacts || !process.env.JOBSD_TEST_PG_URL) {
    console.error('usage: JOBSD_TEST_PG_URL=... console.test.mjs --modules DIR --jobsd BIN --artifacts DIR [--mode auto|page|e2e]');
    process.exit(2);
}
const require = createRequire(path.join(path.resolve(opt.modules), 'x.cjs'));
const puppeteer = require('puppeteer-core');
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
fs.mkdirSync(opt.artifacts, { recursive: true });

const began = Date.now();
const KEY = 'browser-test-internal-key-0123456789abcdef-0123';
const SECRET = 'browser-test-jwt-secret-0123456789abcdef-012345';
const STALE = 'b7000000-0000-4000-8000-000000000001';
const FRESH = 'b7000000-0000-4000-8000-000000000002';
const OTHER = 'b7000000-0000-4000-8000-000000000003';
const FAILED = 'b7000000-0000-4000-8000-00000000f001';
const PARENT = 'b7000000-0000-4000-8000-00000000a001';
const HOLDER = 'b7000000-0000-4000-8000-00000000a002';
const QUEUED = 'b7000000-0000-4000-8000-00000000a003';
const TYPE = 'metrics_aggregation';
// The from/to filter: OLD_IN inside the range (the oldest job in it, so on the second page in
// e2e mode), OLD_OUT before it; FAILED and the rest are after it. UTC days from the test's clock.
const OLD_IN = 'b7000000-0000-4000-8000-00000000d010';
const OLD_OUT = 'b7000000-0000-4000-8000-00000000d020';
const utcDay = (daysAgo) => new Date(Date.now() - daysAgo * 864e5).toISOString().slice(0, 10);
const RANGE = { from: utcDay(11), to: utcDay(9) };
const OLD_IN_AT = utcDay(10) + 'T12:00:00Z';
const OLD_OUT_AT = utcDay(20) + 'T12:00:00Z';
const IN_RANGE_BULK = 55; // more than a page (50): the "Older" page must keep the range too

let failures = 0;
function check(ok, what) {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failures++;
    return ok;
}

// ------------------------------------------------------------------ jobsd and its database
const adminUrl = process.env.JOBSD_TEST_PG_URL;
const dbName = `jb_console_${process.pid}_${Date.now() % 100000}`;
const psql = (url, sql) => execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql], { encoding: 'utf8' }).trim();
const dbUrl = (() => {
    const u = new URL(adminUrl);
    u.pathname = '/' + dbName;
    return u.toString();
})();

const routes = execFileSync(opt.jobsd, ['routes'], { encoding: 'utf8' });
const hasApi = /\/api\/v1\/operator\/fleet/.test(routes);
const mode = opt.mode === 'auto' ? (hasApi ? 'e2e' : 'page') : opt.mode;
if (mode === 'e2e' && !hasApi) {
    console.error('console.test: --mode e2e, but this jobsd has no operator API (`jobsd routes`)');
    process.exit(1);
}
console.log(`console.test: mode ${mode}${mode === 'page' ? ' (the operator API is stubbed in the browser: this jobsd has none)' : ' (real operator API)'}`);

const jobsdEnv = {
    PATH: process.env.PATH, DATABASE_URL: dbUrl, INTERNAL_JOBS_KEY: KEY, JWT_SECRET: SECRET,
    PORT: '0', BIND_ADDRESS: '127.0.0.1', MIGRATE_ON_START: 'true', JOBS_TIMEZONE: 'UTC',
    HTTP_THREADS: '4', JOB_WORKERS: '2', FLEET_MAX_RUNNING: '1', JOB_LEASE_SECONDS: '600',
    FRESHNESS_MAX_AGE_HOURS: '24', SHUTDOWN_GRACE_SECONDS: '5', PER_IP_CONNECTIONS: '0',
};
for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) if (process.env[k]) jobsdEnv[k] = process.env[k];

let jobsd = null;
let browser = null;
const errors = []; // console errors and page errors of the page
let page = null;
let jobsdLog = '';
async function startJobsd() {
    psql(adminUrl, `CREATE DATABASE ${dbName}`);
    jobsd = spawn(opt.jobsd, ['serve'], { env: jobsdEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    if (process.env.JOBSD_TEST_PIDDIR) fs.writeFileSync(path.join(process.env.JOBSD_TEST_PIDDIR, String(jobsd.pid)), opt.jobsd + '\n');
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('jobsd did not listen within 30 s:\n' + jobsdLog)), 30000);
        const onData = (d) => {
            jobsdLog += d;
            const m = /jobsd listening.*?port=(\d+)/.exec(jobsdLog);
            if (m) { clearTimeout(timer); resolve(Number(m[1])); }
        };
        jobsd.stdout.on('data', onData);
        jobsd.stderr.on('data', onData);
        jobsd.on('exit', (code) => { clearTimeout(timer); reject(new Error(`jobsd exited (${code}):\n${jobsdLog}`)); });
    });
}
async function cleanup() {
    if (browser) await browser.close().catch(() => {});
    if (jobsd && jobsd.exitCode === null) {
        jobsd.removeAllListeners('exit');
        const done = new Promise((r) => jobsd.once('exit', r));
        jobsd.kill('SIGTERM');
        await Promise.race([done, new Promise((r) => setTimeout(r, 10000))]);
        if (jobsd.exitCode === null) jobsd.kill('SIGKILL');
    }
    try { psql(adminUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`); } catch (e) { /* reported by the run */ }
}

// The e2e data: tenants (one stale: its last success 30 h ago), a failed rebuild whose request
// is valid (its retry succeeds), a fleet parent with a running child that holds the single
// fleet slot (JOB_LEASE_SECONDS=600: not reaped during the test) and a queued child that so
// cannot be claimed until the test cancels it.
function seed() {
    psql(dbUrl, `
INSERT INTO tenants (id, name) VALUES ('${STALE}', 'Stale shop'), ('${FRESH}', 'Fresh shop'), ('${OTHER}', 'Other shop');
INSERT INTO job_logs (tenant_id, job_type, status, trigger, created_at, started_at, completed_at, duration_ms, metadata)
SELECT t, '${TYPE}', 'success', 'schedule', now() - make_interval(hours => h), now() - make_interval(hours => h),
       now() - make_interval(hours => h) + interval '2 seconds', 2000 + h * 10, jsonb_build_object('request', jsonb_build_object('tenantId', t, 'from', to_char(current_date - 2, 'YYYY-MM-DD'), 'to', to_char(current_date, 'YYYY-MM-DD')))
FROM (VALUES ('${STALE}'::uuid, 30), ('${FRESH}'::uuid, 1), ('${OTHER}'::uuid, 2), ('${FRESH}'::uuid, 50), ('${OTHER}'::uuid, 75)) v(t, h);
INSERT INTO job_logs (id, tenant_id, job_type, status, trigger, attempts, created_at, started_at, completed_at, duration_ms, error_message, metadata)
VALUES ('${FAILED}', '${STALE}', '${TYPE}', 'error', 'http', 1, now() - interval '3 hours', now() - interval '3 hours',
        now() - interval '3 hours' + interval '1 second', 1000, 'database unavailable: the rebuild could not commit',
        jsonb_build_object('request', jsonb_build_object('tenantId', '${STALE}', 'from', to_char(current_date - 2, 'YYYY-MM-DD'), 'to', to_char(current_date, 'YYYY-MM-DD')),
                           'error', jsonb_build_object('code', 'database_unavailable', 'httpStatus', 503, 'message', 'database unavailable: the rebuild could not commit')));
INSERT INTO job_logs (id, tenant_id, job_type, status, trigger, attempts, worker_id, heartbeat_at, created_at, started_at, metadata)
VALUES ('${PARENT}', NULL, '${TYPE}', 'running', 'http', 1, 'browser-test-elsewhere', now(), now(), now(),
        jsonb_build_object('request', jsonb_build_object('allTenants', true, 'from', to_char(current_date - 2, 'YYYY-MM-DD'), 'to', to_char(current_date, 'YYYY-MM-DD'))));
INSERT INTO job_logs (id, tenant_id, job_type, status, trigger, attempts, worker_id, heartbeat_at, created_at, started_at, parent_id, metadata)
VALUES ('${HOLDER}', '${FRESH}', '${TYPE}', 'running', 'fleet', 1, 'browser-test-elsewhere', now(), now(), now(), '${PARENT}',
        jsonb_build_object('request', jsonb_build_object('tenantId', '${FRESH}', 'from', to_char(current_date - 2, 'YYYY-MM-DD'), 'to', to_char(current_date, 'YYYY-MM-DD'))));
INSERT INTO job_logs (id, tenant_id, job_type, status, trigger, created_at, started_at, completed_at, duration_ms, metadata)
SELECT id, '${FRESH}', '${TYPE}', 'success', 'schedule', at, at, at + interval '2 seconds', 2000, '{}'::jsonb
FROM (VALUES ('${OLD_IN}'::uuid, '${OLD_IN_AT}'::timestamptz), ('${OLD_OUT}'::uuid, '${OLD_OUT_AT}'::timestamptz)
      UNION ALL SELECT gen_random_uuid(), '${OLD_IN_AT}'::timestamptz + make_interval(mins => i) FROM generate_series(1, ${IN_RANGE_BULK}) i) v(id, at);
INSERT INTO job_logs (id, tenant_id, job_type, status, trigger, created_at, parent_id, metadata)
VALUES ('${QUEUED}', '${OTHER}', '${TYPE}', 'queued', 'fleet', now(), '${PARENT}',
        jsonb_build_object('request', jsonb_build_object('tenantId', '${OTHER}', 'from', to_char(current_date - 2, 'YYYY-MM-DD'), 'to', to_char(current_date, 'YYYY-MM-DD'))));
`);
}

// ------------------------------------------------------------------ the stubbed API (page mode)
// Shapes from the operator contract (docs/openapi.yaml once the API lands).
function stubApi() {
    const iso = (msAgo) => new Date(Date.now() - msAgo).toISOString();
    const job = (o) => ({ id: o.id, jobType: TYPE, tenantId: o.tenantId ?? STALE, status: o.status, trigger: o.trigger || 'http',
        attempts: o.attempts ?? 1, createdAt: o.createdAt || iso(3600e3), startedAt: o.startedAt === undefined ? iso(3600e3) : o.startedAt,
        completedAt: o.completedAt === undefined ? iso(3599e3) : o.completedAt, durationMs: o.durationMs === undefined ? 1000 : o.durationMs,
        errorMessage: o.errorMessage || null, parentId: o.parentId || null, retryOf: o.retryOf || null });
    const RETRY = 'b7000000-0000-4000-8000-00000000f002';
    const state = { retried: false, retryPolls: 0, cancelled: false };
    const jobs = () => [
        state.retried ? job({ id: RETRY, status: state.retryPolls > 1 ? 'success' : 'running', retryOf: FAILED, createdAt: iso(1000) }) : null,
        job({ id: QUEUED, tenantId: OTHER, status: state.cancelled ? 'cancelled' : 'queued', trigger: 'fleet', attempts: 0, startedAt: null, completedAt: state.cancelled ? iso(0) : null, durationMs: null, parentId: PARENT }),
        job({ id: FAILED, status: 'error', errorMessage: 'database unavailable: the rebuild could not commit', createdAt: iso(3 * 3600e3) }),
        job({ id: 'b7000000-0000-4000-8000-00000000f003', tenantId: FRESH, status: 'success', createdAt: iso(4 * 3600e3) }),
        job({ id: OLD_IN, tenantId: FRESH, status: 'success', createdAt: OLD_IN_AT }),
        job({ id: OLD_OUT, tenantId: FRESH, status: 'success', createdAt: OLD_OUT_AT }),
    ].filter(Boolean);
    const detail = (id) => {
        const j = jobs().find((x) => x.id === id);
        if (!j) return null;
        if (id === RETRY) state.retryPolls++;
        const tl = [{ at: j.createdAt, event: 'queued' }];
        if (j.startedAt) tl.push({ at: j.startedAt, event: 'started' });
        if (j.status === 'success') tl.push({ at: j.completedAt, event: 'finished' });
        if (j.status === 'error') tl.push({ at: j.completedAt, event: 'failed' }, ...(state.retried ? [{ at: iso(1000), event: 'retried' }] : []));
        if (j.status === 'cancelled') tl.push({ at: j.completedAt, event: 'cancelled' });
        return { ...j, request: { tenantId: j.tenantId, daysBack: 2 }, result: j.status === 'success' ? { success: true, rowsUpserted: 12 } : null,
            error: j.status === 'error' ? { code: 'database_unavailable', httpStatus: 503, message: j.errorMessage } : null,
            interruptions: [], retriedBy: id === FAILED && state.retried ? [RETRY] : [], timeline: tl };
    };
    const days = [...Array(30)].map((_, i) => new Date(Date.now() - (29 - i) * 864e5).toISOString().slice(0, 10));
    const trend = (k) => days.map((date, i) => ({ date, success: (i * k) % 5, error: i % 7 === 3 ? 1 : 0, cancelled: i === 20 ? 1 : 0,
        p50Ms: (i * k) % 5 ? 1000 + i * 20 : null, p95Ms: (i * k) % 5 ? 2500 + i * 40 : null }));
    return function answer(method, url, auth) {
        const u = new URL(url);
        const p = u.pathname;
        if (auth !== 'Bearer stub-operator-token') return [401, { success: false, error: { code: 'unauthorized', message: 'bad token' }, requestId: 'x' }];
        if (method === 'GET' && p === '/api/v1/operator/queue') return [200, { success: true, queued: { [TYPE]: 1, mercadolivre_sync: 0 }, running: { [TYPE]: 1 } }];
        if (method === 'GET' && p === '/api/v1/operator/fleet') return [200, { success: true, maxAgeHours: 24, tenants: [
            { tenantId: STALE, stale: true, types: { [TYPE]: { stale: true, lastSuccessAt: iso(30 * 3600e3), lastStatus: 'error', lastJobId: FAILED } } },
            { tenantId: FRESH, stale: false, types: { [TYPE]: { stale: false, lastSuccessAt: iso(3600e3), lastStatus: 'success', lastJobId: 'b7000000-0000-4000-8000-00000000f003' } } },
            { tenantId: OTHER, stale: false, types: { [TYPE]: { stale: false, lastSuccessAt: iso(2 * 3600e3), lastStatus: 'success', lastJobId: null } } }] }];
        if (method === 'GET' && p === '/api/v1/operator/jobs') {
            const [st, from, to] = ['status', 'from', 'to'].map((k) => u.searchParams.get(k));
            return [200, { success: true, nextCursor: null, jobs: jobs().filter((j) => (!st || j.status === st)
                && (!from || j.createdAt.slice(0, 10) >= from) && (!to || j.createdAt.slice(0, 10) <= to)) }];
        }
        if (method === 'GET' && p === '/api/v1/operator/trends') return [200, { success: true, from: days[0], to: days[29], types: { [TYPE]: trend(1), mercadolivre_sync: trend(2) } }];
        let m = /^\/api\/v1\/operator\/jobs\/([0-9a-f-]+)$/.exec(p);
        if (method === 'GET' && m) {
            const d = detail(m[1]);
            return d ? [200, { success: true, job: d }] : [404, { success: false, error: { code: 'job_not_found', message: 'no such job' }, requestId: 'x' }];
        }
        m = /^\/api\/v1\/jobs\/([0-9a-f-]+)\/(retry|cancel)$/.exec(p);
        if (method === 'POST' && m && m[2] === 'retry' && m[1] === FAILED) { state.retried = true; return [202, { success: true, jobLogId: RETRY, retryOf: FAILED, status: 'queued' }]; }
        if (method === 'POST' && m && m[2] === 'cancel' && m[1] === QUEUED) { state.cancelled = true; return [200, { success: true, jobLogId: QUEUED, status: 'cancelled' }]; }
        return [404, { success: false, error: { code: 'not_found', message: `stub: no ${method} ${p}` }, requestId: 'x' }];
    };
}

// ------------------------------------------------------------------ the walk
async function main() {
    const port = await startJobsd();
    const base = `http://127.0.0.1:${port}`;
    let token = 'stub-operator-token';
    if (mode === 'e2e') {
        seed();
        token = execFileSync(opt.jobsd, ['token', '--operator', '--ttl', '3600'], { env: { PATH: process.env.PATH, JWT_SECRET: SECRET }, encoding: 'utf8' }).trim();
    }
    browser = await puppeteer.launch({ executablePath: chromium, headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'] });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    errors.length = 0;
    const outside = [];
    const listRequests = []; // the query strings of GET /api/v1/operator/jobs, in order
    let listResponses = 0;
    const assetBytes = {};
    page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
    page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
    page.on('response', async (r) => {
        const u = new URL(r.url());
        if (u.origin === base && u.pathname === '/api/v1/operator/jobs') listResponses++;
        if (u.origin === base && u.pathname.startsWith('/console') && r.status() === 200) {
            try { assetBytes[u.pathname] = (await r.buffer()).length; } catch (e) { /* a navigation away */ }
        }
    });
    await page.setRequestInterception(true);
    const answer = mode === 'page' ? stubApi() : null;
    page.on('request', (req) => {
        const url = req.url();
        let origin = null;
        try { origin = new URL(url).origin; } catch (e) { /* about:, data: */ }
        if (url.startsWith('data:')) return req.continue();
        if (origin !== base) { outside.push(url); return req.abort('blockedbyclient'); }
        if (new URL(url).pathname === '/api/v1/operator/jobs') listRequests.push(new URL(url).searchParams);
        if (answer && new URL(url).pathname.startsWith('/api/')) {
            const [status, body] = answer(req.method(), url, req.headers().authorization);
            return req.respond({ status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body) });
        }
        return req.continue();
    });
    const shot = (name, fullPage = true) => page.screenshot({ path: path.join(opt.artifacts, name + '.png'), fullPage });
    const badgeIs = (want) => page.waitForFunction((w) => {
        const b = document.querySelector('#view .row .badge');
        return b && b.textContent === w;
    }, { timeout: 30000 }, want);

    // 1. Open the console: first paint, weight.
    await page.goto(base + '/console', { waitUntil: 'load' });
    await page.waitForFunction(() => performance.getEntriesByType('paint').length > 0, { timeout: 5000 }).catch(() => {});
    const paint = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime])));
    const fp = paint['first-paint'] ?? paint['first-contentful-paint'];
    check(typeof fp === 'number' && fp < 300, `first paint ${fp?.toFixed(1)} ms (first-contentful-paint ${paint['first-contentful-paint']?.toFixed(1)} ms) < 300 ms`);
    await new Promise((r) => setTimeout(r, 200));
    const weight = Object.values(assetBytes).reduce((a, b) => a + b, 0);
    check(Object.keys(assetBytes).length === 3 && weight < 150 * 1024, `page weight ${weight} bytes in ${Object.keys(assetBytes).length} files (${JSON.stringify(assetBytes)}) < 150 KB`);
    await shot('01-login');

    // 2. A wrong token is refused, the operator token opens the fleet.
    await page.type('#token', 'not-a-token');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#login-error:not([hidden])');
    check(await page.$eval('#nav', (n) => n.hidden), 'a wrong token: the console stays closed');
    errors.splice(0, errors.length, ...errors.filter((e) => !/401/.test(e))); // the browser logs the refused fetch
    await page.type('#token', token);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#fleet-table tbody tr');
    const fleet = await page.$$eval('#fleet-table tbody tr', (rows) => rows.map((r) => ({ tenant: r.dataset.tenant, stale: r.classList.contains('stale'), text: r.textContent })));
    check(fleet.length >= 2 && fleet[0].tenant === STALE && fleet[0].stale && /stale/.test(fleet[0].text), `fleet: stale tenant first and marked (${fleet.map((f) => f.tenant.slice(-1) + (f.stale ? '*' : '')).join(' ')})`);
    check(fleet.slice(1).every((f) => !f.stale), 'fleet: the others fresh');
    check(await page.evaluate(() => typeof localStorage !== 'undefined' && localStorage.length === 0 && document.cookie === ''), 'no token in localStorage or cookies');
    await shot('02-fleet');

    // 3. The failed jobs, then the failed job by keyboard.
    await page.evaluate(() => { location.hash = '#/jobs?status=error'; });
    await page.waitForSelector(`#jobs-body tr[data-job="${FAILED}"]`);
    check(await page.$$eval('#jobs-body tr', (r) => r.every((x) => x.dataset.status === 'error')), 'jobs filtered on status=error');
    await shot('03-jobs-failed');
    await page.focus(`#jobs-body tr[data-job="${FAILED}"] a`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#retry');
    check(/database_unavailable/.test(await page.$eval('#job-error', (e) => e.textContent)), 'job detail: the error');
    check(await page.$eval('#cancel', (b) => b.disabled), 'job detail: cancel disabled for a finished job');
    await shot('04-job-failed');

    // 4. Retry with confirmation; the new job succeeds.
    await page.click('#retry');
    await page.waitForSelector('#confirm:not([hidden])');
    await shot('05-confirm-retry');
    await page.click('#confirm-yes');
    await page.waitForFunction((f) => /^#\/jobs\/[0-9a-f-]+$/.test(location.hash) && !location.hash.endsWith(f), { timeout: 10000 }, FAILED);
    const newId = await page.evaluate(() => location.hash.slice('#/jobs/'.length));
    await badgeIs('success');
    check(await page.$$eval('#view dd a', (as, f) => as.some((a) => a.textContent === f), FAILED), `retry ${newId} succeeded, linked to ${FAILED}`);
    await shot('06-job-retried');

    // 5. Cancel the queued job with confirmation; it never runs.
    await page.evaluate((q) => { location.hash = '#/jobs/' + q; }, QUEUED);
    await page.waitForSelector('#cancel:not([disabled])');
    await badgeIs('queued');
    await page.click('#cancel');
    await page.waitForSelector('#confirm:not([hidden])');
    await page.click('#confirm-yes');
    await badgeIs('cancelled');
    await new Promise((r) => setTimeout(r, 3000));
    await page.evaluate(() => { location.hash = '#/jobs'; });
    await page.waitForSelector(`#jobs-body tr[data-job="${QUEUED}"]`);
    check(await page.$eval(`#jobs-body tr[data-job="${QUEUED}"]`, (r) => r.dataset.status) === 'cancelled', 'the cancelled job is listed cancelled 3 s later');
    await page.evaluate((q) => { location.hash = '#/jobs/' + q; }, QUEUED);
    await badgeIs('cancelled');
    const events = await page.$$eval('#timeline .badge', (b) => b.map((x) => x.textContent));
    check(!events.includes('started') && events.includes('cancelled'), `cancelled job's timeline: ${events.join(', ')} (never started)`);
    if (mode === 'e2e') {
        const row = psql(dbUrl, `SELECT status || ' ' || (started_at IS NULL) FROM job_logs WHERE id = '${QUEUED}'`);
        check(row === 'cancelled true', `job_logs: ${row} (cancelled, never started)`);
    }
    await shot('07-job-cancelled');

    // 5b. The from/to filter (UTC days on createdAt): first given in the address, then with the
    // form's date inputs; kept by the auto-refresh and by the "Older" page; a reversed range is
    // refused by name and not sent; the Jobs link clears it.
    const rowIds = () => page.$$eval('#jobs-body tr[data-job]', (r) => r.map((x) => x.dataset.job));
    const lastList = () => listRequests[listRequests.length - 1];
    const carries = (q, r) => !!q && q.get('from') === r.from && q.get('to') === r.to;
    const listAfter = async (k) => { // the rows once a list request after the k-th has answered
        const t0 = Date.now();
        while (listResponses <= k && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 50));
        await page.waitForSelector('#jobs-body tr', { timeout: 10000 });
        await new Promise((r) => setTimeout(r, 300)); // the rows are drawn from the answer's body
        return rowIds();
    };
    let n = listRequests.length;
    await page.evaluate((r) => { location.hash = '#/jobs?from=' + r.from + '&to=' + r.to; }, RANGE);
    let ids = await listAfter(n);
    check(carries(lastList(), RANGE), `filter in the address: the list request carried from=${RANGE.from}&to=${RANGE.to} (it sent ${lastList()})`);
    check(!ids.includes(FAILED) && !ids.includes(OLD_OUT) && ids.length > 0, `filter in the address: the jobs outside ${RANGE.from}..${RANGE.to} are gone (${ids.length} rows, FAILED ${ids.includes(FAILED) ? 'listed' : 'gone'}, the 20-day-old job ${ids.includes(OLD_OUT) ? 'listed' : 'gone'})`);

    n = listRequests.length;
    await page.evaluate(() => { location.hash = '#/jobs'; });
    await listAfter(n);
    const hasInputs = check(!!(await page.$('#job-filters input[type="date"][name="from"]')) && !!(await page.$('#job-filters input[type="date"][name="to"]')), 'the jobs filter form has from and to date inputs');
    if (hasInputs) {
        check(await page.$$eval('#job-filters input[type="date"]', (is) => is.every((i) => i.closest('label') && /From|To/.test(i.closest('label').textContent))), 'the date inputs are labelled');
        ids = await rowIds();
        check(ids.includes(FAILED), 'no range: the recent failed job is listed');
        const setDates = (r) => page.evaluate((v) => {
            const f = document.getElementById('job-filters').elements;
            f.from.value = v.from;
            f.to.value = v.to;
        }, r);
        // reversed: refused by name, nothing sent, the address unchanged
        n = listRequests.length;
        const hashBefore = await page.evaluate(() => location.hash);
        await setDates({ from: RANGE.to, to: RANGE.from });
        await page.click('#job-filters button[type="submit"]');
        await page.waitForSelector('#filter-error:not([hidden])');
        const msg = await page.$eval('#filter-error', (e) => e.textContent);
        check(/From/.test(msg) && /To/.test(msg) && await page.$eval('#job-filters input[name="from"]', (i) => i.getAttribute('aria-invalid') === 'true'),
            `a reversed range is refused by name: "${msg}"`);
        await new Promise((r) => setTimeout(r, 500));
        check(await page.evaluate(() => location.hash) === hashBefore && !listRequests.slice(n).some((q) => q.get('from') || q.get('to')), 'a reversed range is not sent');
        await shot('11-jobs-range-refused');
        // the range with the form's Filter button
        n = listRequests.length;
        await setDates(RANGE);
        await page.click('#job-filters button[type="submit"]');
        ids = await listAfter(n);
        check(carries(lastList(), RANGE), `the form's range is sent: ${lastList()}`);
        check(await page.$eval('#filter-error', (e) => e.hidden), 'the refusal is gone once the range is valid');
        check(!ids.includes(FAILED) && !ids.includes(OLD_OUT), `the form's range: FAILED and the 20-day-old job gone (${ids.length} rows)`);
        const created = await page.$$eval('#jobs-body tr[data-job] td:nth-child(6)', (t) => t.map((x) => x.textContent.slice(0, 10)));
        check(created.length > 0 && created.every((d) => d >= RANGE.from && d <= RANGE.to), `every listed job was created in ${RANGE.from}..${RANGE.to}`);
        check(await page.$eval('#job-filters input[name="from"]', (i) => i.value) === RANGE.from, 'the inputs keep the range');
        await shot('12-jobs-filtered');
        // the auto-refresh keeps the range
        n = listRequests.length;
        const t0 = Date.now();
        while (listRequests.length <= n && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 100));
        check(listRequests.length > n && carries(listRequests[n], RANGE), `the auto-refresh keeps the range (${listRequests[n] || 'no refresh within 8 s'})`);
        if (mode === 'e2e') { // more than a page in range: "Older" keeps it; the range's oldest job is on page 2
            const more = await page.$('#older:not([hidden])');
            if (check(!!more, `more than a page in range (${IN_RANGE_BULK + 1} jobs): "Older" offered`)) {
                n = listRequests.length;
                await page.click('#older');
                const t1 = Date.now();
                while (listRequests.length <= n && Date.now() - t1 < 8000) await new Promise((r) => setTimeout(r, 50));
                await page.waitForSelector(`#jobs-body tr[data-job="${OLD_IN}"]`, { timeout: 10000 }).catch(() => {});
                const q = listRequests[n];
                check(!!q && carries(q, RANGE) && !!q.get('before'), `"Older" sent the range with the cursor (${q})`);
                ids = await rowIds();
                check(ids.includes(OLD_IN) && !ids.includes(OLD_OUT), `"Older": the range's oldest job listed, the 20-day-old one not (${ids.length} rows)`);
            }
        }
        // whatever clears the other filters clears the range: the Jobs link
        n = listRequests.length;
        await page.evaluate((st) => { location.hash = '#/jobs?status=success&from=' + st.from + '&to=' + st.to; }, RANGE);
        await listAfter(n);
        n = listRequests.length;
        await page.click('#nav-jobs');
        ids = await listAfter(n);
        const vals = await page.$$eval('#job-filters input, #job-filters select', (is) => is.map((i) => i.value).join(''));
        check(vals === '' && !lastList().get('from') && !lastList().get('to') && !lastList().get('status') && ids.includes(FAILED), 'the Jobs link clears the range with the other filters');
    }

    // 6. Trends.
    await page.click('#nav-trends');
    await page.waitForSelector('figure.chart-runs svg rect');
    const charts = await page.$$eval('figure', (f) => f.length);
    check(charts >= 2 && (await page.$$('figure.chart-duration svg polyline')).length >= 1, `trends: ${charts} SVG charts`);
    await shot('08-trends');

    // 7. Phone width, keyboard.
    await page.setViewport({ width: 390, height: 844 });
    await page.click('#nav-fleet');
    await page.waitForSelector('#fleet-table tbody tr');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(overflow <= 390, `390 px wide: the page is ${overflow} px wide (tables scroll inside their box)`);
    await shot('09-fleet-390');
    await page.evaluate((r) => { location.hash = '#/jobs?from=' + r.from + '&to=' + r.to; }, RANGE);
    await page.waitForSelector('#jobs-body tr');
    const jobsWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    check(jobsWidth <= 390, `390 px wide: the jobs view with its filters is ${jobsWidth} px wide`);
    await shot('10-jobs-390', false); // the first screen: the list in range is long
    await page.setViewport({ width: 1280, height: 800 });
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
        const a = document.activeElement;
        return { tag: a.tagName, outline: getComputedStyle(a).outlineStyle };
    });
    check(['A', 'BUTTON', 'INPUT', 'SELECT'].includes(focused.tag) && focused.outline !== 'none', `Tab focuses a ${focused.tag} with a visible outline (${focused.outline})`);

    check(errors.length === 0, `no console error or page error${errors.length ? ': ' + errors.join(' | ') : ''}`);
    check(outside.length === 0, `no request outside ${base}${outside.length ? ': ' + outside.join(' ') : ''}`);
    console.log(`console.test: figures: firstPaintMs=${fp?.toFixed(1)} firstContentfulPaintMs=${paint['first-contentful-paint']?.toFixed(1)} pageBytes=${weight}`);
}

let rc = 0;
try {
    await main();
} catch (e) {
    console.error('FAIL', e.stack || e.message);
    if (errors.length) console.error('the page\'s errors so far: ' + errors.join(' | '));
    if (page) await page.screenshot({ path: path.join(opt.artifacts, 'failure.png'), fullPage: true }).catch(() => {});
    failures++;
} finally {
    await cleanup();
}
if (failures) {
    console.error(`console.test: ${failures} failure(s); screenshots in ${opt.artifacts}`);
    if (jobsdLog) console.error('--- the last lines of jobsd\'s log:\n' + jobsdLog.split('\n').slice(-15).join('\n'));
    rc = 1;
}
console.log(`console.test: ${mode} mode ${rc ? 'FAILED' : 'passed'} in ${((Date.now() - began) / 1000).toFixed(1)} s`);
process.exit(rc);
