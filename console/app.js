// The jobsd operator console: one small script, no dependency, no build step. It talks to
// jobsd's operator API (same origin) with an operator token held in this variable only: no
// localStorage, no cookie; reloading the page forgets it. Views are hash routes: #/fleet,
// #/jobs, #/jobs/<id>, #/trends. Every element is built with the DOM (textContent), never
// from HTML strings, and nothing uses inline script or style (the CSP forbids both).
'use strict';
(function () {
  let token = null;
  let refreshTimer = null;
  const API = '/api/v1';
  const REFRESH_MS = 5000;
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- DOM helpers
  function el(tag, attrs, ...kids) {
    const svg = ['svg', 'g', 'rect', 'line', 'polyline', 'text', 'title'].includes(tag);
    const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'onclick') e.addEventListener('click', v);
      else if (k === 'onchange') e.addEventListener('change', v);
      else if (k === 'onsubmit') e.addEventListener('submit', v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  const badge = (s) => el('span', { class: 'badge s-' + (s || 'none'), text: s || '—' });
  const fmtTime = (t) => (t ? new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—');
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    return (ms / 60000).toFixed(1) + ' min';
  }
  const jobLink = (id) => el('a', { href: '#/jobs/' + encodeURIComponent(id), class: 'mono', text: id });

  // ---------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  async function api(method, path) {
    const res = await fetch(API + path, {
      method, headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' },
      credentials: 'omit', cache: 'no-store',
    });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok || !body || body.success === false) {
      const err = (body && body.error) || {};
      throw new ApiError(res.status, err.code || 'http_' + res.status, err.message || res.statusText);
    }
    return { status: res.status, body };
  }

  // ---------------------------------------------------------------- shell
  const view = () => $('view');
  function show(title, ...kids) {
    const v = view();
    v.replaceChildren(el('h2', { text: title, tabindex: '-1', id: 'view-title' }), ...kids.flat(Infinity).filter((k) => k !== null && k !== undefined));
  }
  function showError(e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      signOut(e.status === 403 ? 'This token is not an operator token (403 ' + e.code + ').'
        : 'The token was refused (401 ' + e.code + '): it may have expired.');
      return;
    }
    view().append(el('p', { class: 'error', role: 'alert', text: 'Error: ' + (e.code ? e.code + ': ' : '') + e.message }));
  }
  function stopRefresh() { if (refreshTimer) { clearTimeout(refreshTimer); refreshTimer = null; } }
  function signOut(message) {
    token = null;
    stopRefresh();
    $('view').hidden = true;
    $('view').replaceChildren();
    $('nav').hidden = true;
    $('login').hidden = false;
    $('token').value = '';
    const le = $('login-error');
    le.hidden = !message;
    le.textContent = message || '';
    $('token').focus();
  }
  function markNav(name) {
    for (const n of ['fleet', 'jobs', 'trends']) {
      const a = $('nav-' + n);
      if (n === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
  }

  // ---------------------------------------------------------------- confirmation
  function confirmAction(text) {
    return new Promise((resolve) => {
      const box = $('confirm');
      const back = document.activeElement;
      $('confirm-text').textContent = text;
      box.hidden = false;
      $('confirm-no').focus();
      function done(ok) {
        box.hidden = true;
        $('confirm-yes').removeEventListener('click', yes);
        $('confirm-no').removeEventListener('click', no);
        box.removeEventListener('keydown', key);
        if (back && back.focus) back.focus();
        resolve(ok);
      }
      const yes = () => done(true);
      const no = () => done(false);
      const key = (ev) => {
        if (ev.key === 'Escape') done(false);
        if (ev.key === 'Tab') { // keep the focus inside the dialog
          ev.preventDefault();
          (document.activeElement === $('confirm-no') ? $('confirm-yes') : $('confirm-no')).focus();
        }
      };
      $('confirm-yes').addEventListener('click', yes);
      $('confirm-no').addEventListener('click', no);
      box.addEventListener('keydown', key);
    });
  }

  // ---------------------------------------------------------------- fleet
  async function viewFleet() {
    markNav('fleet');
    show('Fleet', el('p', { class: 'meta', text: 'Loading…' }));
    let b;
    try { b = (await api('GET', '/operator/fleet')).body; } catch (e) { view().lastChild.remove(); showError(e); return; }
    const types = [...new Set(b.tenants.flatMap((t) => Object.keys(t.types || {})))].sort();
    const stale = b.tenants.filter((t) => t.stale).length;
    const rows = b.tenants.map((t) => el('tr', { class: t.stale ? 'stale' : null, 'data-tenant': t.tenantId },
      el('td', {}, el('a', { href: '#/jobs?tenantId=' + encodeURIComponent(t.tenantId), class: 'mono', text: t.tenantId })),
      el('td', {}, badge(t.stale ? 'stale' : 'fresh')),
      types.map((ty) => {
        const c = (t.types || {})[ty];
        if (!c) return el('td', { class: 'meta', text: 'n/a' });
        return el('td', {},
          c.stale ? badge('stale') : null, ' ',
          c.lastStatus ? (c.lastJobId ? el('a', { href: '#/jobs/' + encodeURIComponent(c.lastJobId), 'aria-label': ty + ' last job, ' + c.lastStatus }, badge(c.lastStatus)) : badge(c.lastStatus)) : badge(null),
          el('div', { class: 'meta', text: 'last success ' + fmtTime(c.lastSuccessAt) }));
      })));
    show('Fleet',
      el('p', { class: 'meta', text: b.tenants.length + ' tenants, ' + stale + ' stale (no success for ' + b.maxAgeHours + ' h), stale first.' }),
      el('div', { class: 'table-wrap' }, el('table', { id: 'fleet-table' },
        el('thead', {}, el('tr', {}, el('th', { text: 'Tenant' }), el('th', { text: 'Freshness' }),
          types.map((ty) => el('th', { text: ty })))),
        el('tbody', {}, rows))));
  }

  // ---------------------------------------------------------------- jobs
  const STATUSES = ['', 'queued', 'running', 'success', 'error', 'cancelled'];
  const FILTERS = ['jobType', 'status', 'tenantId', 'from', 'to'];
  function jobsQuery(params) {
    const q = new URLSearchParams();
    for (const k of FILTERS) if (params.get(k)) q.set(k, params.get(k));
    return q;
  }
  // from and to are UTC days, inclusive, on createdAt (the API's). What is wrong with them, or
  // null: [the field to blame, the message]. A date input whose text is not a whole date has
  // the value '' and validity.badInput.
  const isDate = (v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && !isNaN(Date.parse(v + 'T00:00:00Z'));
  function rangeProblem(from, to, bad) {
    for (const [k, name] of [['from', 'From'], ['to', 'To']]) {
      const v = k === 'from' ? from : to;
      if ((bad && bad[k]) || (v && !isDate(v))) return [k, name + ' is not a date (YYYY-MM-DD).'];
    }
    if (from && to && from > to) return ['from', 'From (' + from + ') is after To (' + to + '): no job can match. Change From or To.'];
    return null;
  }
  async function viewJobs(params) {
    markNav('jobs');
    const filters = jobsQuery(params);
    let types = [];
    try { types = Object.keys((await api('GET', '/operator/queue')).body.queued || {}); } catch (e) { /* the list says why */ }
    const ferr = el('p', { id: 'filter-error', class: 'error', role: 'alert', hidden: true });
    function flagRange(problem) { // marks the field to blame, or clears the marks
      for (const k of ['from', 'to']) {
        const i = form.elements[k];
        if (problem && problem[0] === k) { i.setAttribute('aria-invalid', 'true'); i.setAttribute('aria-describedby', 'filter-error'); } else { i.removeAttribute('aria-invalid'); i.removeAttribute('aria-describedby'); }
      }
      ferr.hidden = !problem;
      ferr.textContent = problem ? problem[1] : '';
    }
    const form = el('form', { id: 'job-filters', onsubmit: (ev) => {
      ev.preventDefault();
      const f = form.elements;
      const problem = rangeProblem(f.from.value, f.to.value, { from: f.from.validity.badInput, to: f.to.validity.badInput });
      flagRange(problem);
      if (problem) { f[problem[0]].focus(); return; } // not sent
      const q = new URLSearchParams();
      for (const k of FILTERS) { const v = f[k].value.trim(); if (v) q.set(k, v); }
      location.hash = '#/jobs' + (q.toString() ? '?' + q : '');
    } },
    el('label', {}, 'Type', el('select', { name: 'jobType' }, el('option', { value: '', text: 'any' }),
      [...new Set([...types, filters.get('jobType') || ''])].filter(Boolean).sort().map((t) => el('option', { value: t, text: t, selected: t === filters.get('jobType') })))),
    el('label', {}, 'Status', el('select', { name: 'status' },
      STATUSES.map((s) => el('option', { value: s, text: s || 'any', selected: s === (filters.get('status') || '') })))),
    el('label', {}, 'Tenant', el('input', { name: 'tenantId', value: filters.get('tenantId') || '', placeholder: 'tenant id', size: 38 })),
    el('label', {}, 'From (UTC day)', el('input', { type: 'date', name: 'from', value: filters.get('from') || '' })),
    el('label', {}, 'To (UTC day)', el('input', { type: 'date', name: 'to', value: filters.get('to') || '' })),
    el('button', { type: 'submit', text: 'Filter' }));
    const auto = el('input', { type: 'checkbox', id: 'auto-refresh', checked: true });
    const tbody = el('tbody', { id: 'jobs-body' });
    const more = el('button', { type: 'button', id: 'older', text: 'Older', hidden: true });
    const status = el('p', { class: 'meta', id: 'jobs-status' });
    show('Jobs', form, ferr,
      el('div', { class: 'row' }, el('label', { for: 'auto-refresh' }, auto, ' Auto-refresh every ' + REFRESH_MS / 1000 + ' s'), status),
      el('div', { class: 'table-wrap' }, el('table', { id: 'jobs-table' },
        el('thead', {}, el('tr', {}, ['Job', 'Type', 'Tenant', 'Status', 'Attempts', 'Created', 'Duration', 'Error'].map((h, i) =>
          el('th', { class: i === 2 || i === 7 ? 'hide-narrow' : null, text: h })))), tbody)),
      el('div', { class: 'row' }, more));
    let cursor = null;
    const row = (j) => el('tr', { 'data-job': j.id, 'data-status': j.status },
      el('td', {}, jobLink(j.id), j.retryOf ? el('div', { class: 'meta', text: 'retry of ' + j.retryOf.slice(0, 8) }) : null),
      el('td', { text: j.jobType }), el('td', { class: 'mono hide-narrow', text: j.tenantId || '—' }),
      el('td', {}, badge(j.status)), el('td', { class: 'num', text: j.attempts }),
      el('td', { text: fmtTime(j.createdAt) }), el('td', { class: 'num', text: fmtMs(j.durationMs) }),
      el('td', { class: 'hide-narrow', text: j.errorMessage || '' }));
    async function page(before) {
      const q = jobsQuery(filters);
      q.set('limit', '50');
      if (before) q.set('before', before);
      const b = (await api('GET', '/operator/jobs?' + q)).body;
      return b;
    }
    const hashProblem = rangeProblem(filters.get('from') || '', filters.get('to') || '', null);
    async function refresh() {
      stopRefresh();
      if (!view().contains(tbody)) return;
      if (hashProblem) { // a range typed into the address: said, not sent
        flagRange(hashProblem);
        tbody.replaceChildren(el('tr', {}, el('td', { colspan: 8, class: 'meta', text: 'No request sent: ' + hashProblem[1] })));
        return;
      }
      // A keyboard user inside the list keeps the focus: the refresh waits until it leaves.
      if (tbody.contains(document.activeElement)) {
        if (auto.checked && token) refreshTimer = setTimeout(refresh, REFRESH_MS);
        return;
      }
      try {
        const b = await page(null);
        tbody.replaceChildren(...b.jobs.map(row));
        if (!b.jobs.length) tbody.append(el('tr', {}, el('td', { colspan: 8, class: 'meta', text: 'No job matches.' })));
        cursor = b.nextCursor;
        more.hidden = !cursor;
        status.textContent = 'Updated ' + new Date().toLocaleTimeString();
      } catch (e) { showError(e); return; }
      if (auto.checked && token) refreshTimer = setTimeout(refresh, REFRESH_MS);
    }
    more.addEventListener('click', async () => {
      auto.checked = false; // paging back in time: the list holds still
      stopRefresh();
      try {
        const b = await page(cursor);
        tbody.append(...b.jobs.map(row));
        cursor = b.nextCursor;
        more.hidden = !cursor;
      } catch (e) { showError(e); }
    });
    auto.addEventListener('change', () => (auto.checked ? refresh() : stopRefresh()));
    await refresh();
  }

  // ---------------------------------------------------------------- job detail
  function json(v) { return el('pre', { class: 'mono', text: JSON.stringify(v, null, 2) }); }
  async function viewJob(id) {
    markNav('jobs');
    let j;
    try { j = (await api('GET', '/operator/jobs/' + encodeURIComponent(id))).body.job; } catch (e) { show('Job'); showError(e); return; }
    const active = j.status === 'queued' || j.status === 'running';
    const msg = el('p', { id: 'action-result', role: 'status' });
    async function act(what) {
      const ok = await confirmAction(what === 'retry'
        ? 'Retry job ' + j.id + '? A new ' + j.jobType + ' job with the same request is queued.'
        : 'Cancel job ' + j.id + '? A queued job never runs; a running one stops and rolls back.');
      if (!ok) return;
      try {
        const b = (await api('POST', '/jobs/' + encodeURIComponent(j.id) + '/' + what)).body;
        if (what === 'retry') {
          location.hash = '#/jobs/' + encodeURIComponent(b.jobLogId);
        } else {
          await viewJob(j.id);
          $('action-result').textContent = 'Cancel answered: ' + b.status;
        }
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) msg.textContent = 'Refused (' + e.code + '): ' + e.message;
        else showError(e);
      }
    }
    show('Job ' + j.id,
      el('div', { class: 'row' }, badge(j.status),
        el('button', { type: 'button', id: 'retry', disabled: active, onclick: () => act('retry'), text: 'Retry' }),
        el('button', { type: 'button', id: 'cancel', class: 'danger', disabled: !active, onclick: () => act('cancel'), text: 'Cancel' }),
        active ? el('button', { type: 'button', id: 'reload', onclick: () => viewJob(j.id), text: 'Reload' }) : null),
      msg,
      el('dl', { class: 'kv' },
        [['Type', j.jobType], ['Tenant', j.tenantId || '—'], ['Trigger', j.trigger], ['Attempts', j.attempts],
          ['Created', fmtTime(j.createdAt)], ['Started', fmtTime(j.startedAt)], ['Completed', fmtTime(j.completedAt)],
          ['Duration', fmtMs(j.durationMs)]].map(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]),
        j.parentId ? [el('dt', { text: 'Parent' }), el('dd', {}, jobLink(j.parentId))] : null,
        j.retryOf ? [el('dt', { text: 'Retry of' }), el('dd', {}, jobLink(j.retryOf))] : null,
        (j.retriedBy || []).length ? [el('dt', { text: 'Retried by' }), el('dd', {}, j.retriedBy.map((r) => [jobLink(r), ' ']))] : null),
      j.error ? [el('h3', { text: 'Error' }), el('p', { class: 'error', id: 'job-error' },
        el('strong', { text: j.error.code }), ' (' + j.error.httpStatus + '): ' + j.error.message)] : null,
      el('h3', { text: 'Timeline' }),
      el('ol', { class: 'timeline', id: 'timeline' }, (j.timeline || []).map((t) =>
        el('li', {}, badge(t.event), ' ' + fmtTime(t.at)))),
      (j.interruptions || []).length ? [el('h3', { text: 'Interruptions' }), json(j.interruptions)] : null,
      el('h3', { text: 'Request' }), json(j.request),
      j.result ? [el('h3', { text: 'Result' }), json(j.result)] : null);
    if (active && token) refreshTimer = setTimeout(() => { if (location.hash === '#/jobs/' + encodeURIComponent(j.id)) viewJob(j.id); }, 2000);
  }

  // ---------------------------------------------------------------- trends (SVG)
  const W = 560;
  const H = 180;
  const PAD = { l: 44, r: 8, t: 8, b: 22 };
  function axes(days, max, fmt) {
    const g = el('g', {});
    const x0 = PAD.l;
    const y0 = H - PAD.b;
    g.append(el('line', { class: 'axis', x1: x0, y1: y0, x2: W - PAD.r, y2: y0 }));
    for (const f of [0, 0.5, 1]) {
      const y = y0 - f * (y0 - PAD.t);
      g.append(el('line', { class: 'axis', x1: x0, y1: y, x2: W - PAD.r, y2: y }),
        el('text', { x: x0 - 4, y: y + 3, 'text-anchor': 'end', text: fmt(max * f) }));
    }
    const step = Math.max(1, Math.ceil(days.length / 6));
    days.forEach((d, i) => {
      if (i % step) return;
      g.append(el('text', { x: xAt(i, days.length) + bw(days.length) / 2, y: H - 6, 'text-anchor': 'middle', text: d.date.slice(5) }));
    });
    return g;
  }
  const bw = (n) => (W - PAD.l - PAD.r) / Math.max(n, 1);
  const xAt = (i, n) => PAD.l + i * bw(n);
  function runsChart(type, days) {
    const max = Math.max(1, ...days.map((d) => d.success + d.error + d.cancelled));
    const scale = (H - PAD.b - PAD.t) / max;
    const svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'Runs per day of ' + type + ' by outcome' },
      axes(days, max, (v) => String(Math.round(v))));
    days.forEach((d, i) => {
      let y = H - PAD.b;
      for (const k of ['success', 'error', 'cancelled']) {
        if (!d[k]) continue;
        const h = d[k] * scale;
        y -= h;
        svg.append(el('rect', { class: 'bar-' + k, x: xAt(i, days.length) + 1, y, width: Math.max(1, bw(days.length) - 2), height: h },
          el('title', { text: d.date + ': ' + d[k] + ' ' + k })));
      }
    });
    return el('figure', { class: 'chart-runs', 'data-type': type }, el('figcaption', { text: type + ': runs per day' }), svg,
      el('div', { class: 'legend' }, ['success', 'error', 'cancelled'].map((k) => el('span', {}, el('span', { class: 'key key-' + k }), k))));
  }
  function durationChart(type, days) {
    const max = Math.max(1, ...days.map((d) => Math.max(d.p50Ms || 0, d.p95Ms || 0)));
    const scale = (H - PAD.b - PAD.t) / max;
    const svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'p50 and p95 duration per day of ' + type },
      axes(days, max, (v) => fmtMs(Math.round(v))));
    for (const k of ['p50Ms', 'p95Ms']) {
      const pts = [];
      days.forEach((d, i) => {
        if (d[k] === null || d[k] === undefined) return;
        pts.push((xAt(i, days.length) + bw(days.length) / 2).toFixed(1) + ',' + (H - PAD.b - d[k] * scale).toFixed(1));
      });
      if (pts.length) svg.append(el('polyline', { class: k === 'p50Ms' ? 'line-p50' : 'line-p95', points: pts.join(' ') }));
    }
    return el('figure', { class: 'chart-duration', 'data-type': type }, el('figcaption', { text: type + ': duration p50 / p95' }), svg,
      el('div', { class: 'legend' }, el('span', {}, el('span', { class: 'key key-p50' }), 'p50'), el('span', {}, el('span', { class: 'key key-p95' }), 'p95')));
  }
  async function viewTrends() {
    markNav('trends');
    let b;
    try { b = (await api('GET', '/operator/trends?days=30')).body; } catch (e) { show('Trends'); showError(e); return; }
    const types = Object.keys(b.types).sort();
    show('Trends', el('p', { class: 'meta', text: b.from + ' to ' + b.to + ' (UTC days)' }),
      el('div', { class: 'charts', id: 'charts' }, types.map((t) => [runsChart(t, b.types[t]), durationChart(t, b.types[t])])));
  }

  // ---------------------------------------------------------------- routing
  async function route() {
    stopRefresh();
    if (!token) return;
    const h = location.hash || '#/fleet';
    const [path, query] = h.slice(1).split('?');
    const params = new URLSearchParams(query || '');
    const m = path.match(/^\/jobs\/([0-9a-fA-F-]{1,64})$/);
    if (m) await viewJob(m[1]);
    else if (path === '/jobs') await viewJobs(params);
    else if (path === '/trends') await viewTrends();
    else await viewFleet();
    const t = $('view-title');
    if (t && document.activeElement === document.body) t.focus({ preventScroll: true });
  }

  function start() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      if (!t) return;
      token = t;
      try {
        await api('GET', '/operator/queue'); // checks the token before showing anything
      } catch (e) {
        const why = e instanceof ApiError ? e.status + ' ' + e.code + ': ' + e.message : e.message;
        signOut('Token refused (' + why + ').');
        return;
      }
      $('token').value = '';
      $('login').hidden = true;
      $('nav').hidden = false;
      view().hidden = false;
      await route();
      const t2 = $('view-title');
      if (t2) t2.focus({ preventScroll: true });
    });
    $('signout').addEventListener('click', () => signOut(null));
    window.addEventListener('hashchange', route);
    $('token').focus();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
