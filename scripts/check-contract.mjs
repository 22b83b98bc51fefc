#!/usr/bin/env node
// The contract check: every response jobsd gave the end-to-end and chaos tests (recorded by
// tests/support/testhttp.c when JOBSD_TEST_RECORD names a file) is matched to what
// docs/openapi.yaml says of its request and validated against it, so the document and the
// server cannot drift apart unnoticed.
//
//   node scripts/check-contract.mjs --modules DIR [--show N] docs/openapi.yaml RECORDS.jsonl
//
// DIR is a node_modules directory holding ajv@8, ajv-formats@3 and yaml@2 (scripts/test.sh
// installs them from the npm registry). Each record is one JSON line: {test, method, target
// (or requestLine when the request line had not the form METHOD TARGET VERSION), status,
// headers: {lower-case name: [values]}, body}.
//
// How a response is matched (the document's x-unmatched-requests says the same to readers):
//  1. No X-Request-Id, no JSON Content-Type and a status of
//     x-unmatched-requests.libmicrohttpd.statuses: an error page libmicrohttpd answered itself
//     before jobsd saw the request (SPEC 2 exempts them): counted, not validated.
//  2. The path (the target without its query) is matched to the document's path templates,
//     literal paths first, then the template with the fewest parameters (the router's rule).
//     None: the responses of x-unmatched-requests.unknownPath.
//  3. The method (case-sensitive, as HTTP methods are) is one of the path's operations: its
//     response for the status (else the status's nXX range, else `default`); a status the
//     operation does not list is a failure. No such operation: the responses of
//     x-unmatched-requests.otherMethod, and Allow must name exactly the path's methods other
//     than OPTIONS.
//  4. The response: every header the document marks required is present, every documented
//     header that is present matches its schema (integer schemas read the value as a number);
//     a HEAD response, or one the document gives no content, has no body; otherwise the
//     Content-Type is one of the documented media types (its type, and every parameter the
//     document names) and the body (JSON for a JSON media type) validates against that media
//     type's schema with Ajv's JSON Schema 2020-12 validator and ajv-formats (OpenAPI 3.1's
//     dialect: `example`, `discriminator`, `xml` and `externalDocs` are annotations).
//
// Prints the figures (responses validated, operations and statuses exercised, time) and the
// documented operations no test exercised; on any failure, the first N (default 10) with the
// test that got them, then the failures grouped by kind, and exits 1. Exit 2: usage, or a
// document or record that cannot be read.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const began = Date.now();
const args = process.argv.slice(2);
let modules = null;
let show = 10;
const positional = [];
for (let i = 0; i < args.length; i++) {
    if (args[i] === '--modules') modules = args[++i];
    else if (args[i] === '--show') show = Number(args[++i]);
    else positional.push(args[i]);
}
if (!modules || positional.length !== 2 || !(show >= 0)) {
    console.error('usage: check-contract.mjs --modules NODE_MODULES_DIR [--show N] OPENAPI.yaml RECORDS.jsonl');
    process.exit(2);
}
const [docPath, recordsPath] = positional;
const require = createRequire(path.join(path.resolve(modules), 'check-contract.cjs'));
const YAML = require('yaml');
const ajvModule = require('ajv/dist/2020');
const Ajv2020 = ajvModule.default || ajvModule;
const formatsModule = require('ajv-formats');
const addFormats = formatsModule.default || formatsModule;

function die(msg) {
    console.error(`check-contract: ${msg}`);
    process.exit(2);
}

let doc;
try {
    doc = YAML.parse(fs.readFileSync(docPath, 'utf8'));
} catch (e) {
    die(`${docPath}: ${e.message}`);
}

// ------------------------------------------------------------------ the document
// A local reference ('#/components/...') to the object it names.
function pointer(ref) {
    if (typeof ref !== 'string' || !ref.startsWith('#/')) die(`unsupported $ref ${ref}`);
    let node = doc;
    for (const raw of ref.slice(2).split('/')) {
        const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
        if (node === null || typeof node !== 'object' || !(key in node)) die(`dangling $ref ${ref}`);
        node = node[key];
    }
    return node;
}
// A response, header or media type object with its $ref followed (OpenAPI objects, not schemas).
function deref(obj) {
    for (let n = 0; obj && typeof obj === 'object' && '$ref' in obj; n++) {
        if (n > 20) die(`$ref loop at ${obj.$ref}`);
        obj = pointer(obj.$ref);
    }
    return obj;
}

// Schemas: components.schemas becomes the $defs of one schema resource, and every
// '#/components/schemas/X' reference points there, so Ajv resolves them itself.
const BASE = 'https://jobsd.invalid/openapi.json';
function rewriteRefs(node) {
    if (Array.isArray(node)) return node.map(rewriteRefs);
    if (node === null || typeof node !== 'object') return node;
    const out = {};
    for (const [k, v] of Object.entries(node)) {
        if (k === '$ref') {
            if (typeof v !== 'string' || !v.startsWith('#/components/schemas/'))
                die(`a schema $ref must name #/components/schemas/...: ${v}`);
            out[k] = `${BASE}#/$defs/${v.slice('#/components/schemas/'.length)}`;
        } else {
            out[k] = rewriteRefs(v);
        }
    }
    return out;
}
const ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: false });
addFormats(ajv);
ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs']);
try {
    ajv.addSchema({ $id: BASE, $defs: rewriteRefs((doc.components || {}).schemas || {}) });
} catch (e) {
    die(`${docPath} components.schemas: ${e.message}`);
}
const compiled = new Map();
function validator(schema, where) {
    if (!compiled.has(where)) {
        try {
            compiled.set(where, ajv.compile(rewriteRefs(schema)));
        } catch (e) {
            die(`${docPath} ${where}: ${e.message}`);
        }
    }
    return compiled.get(where);
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const templates = Object.keys(doc.paths || {}).map((t) => {
    const segs = t.split('/');
    return { template: t, segs, params: segs.filter((s) => /^\{[^}]+\}$/.test(s)).length };
});
const unmatched = doc['x-unmatched-requests'] || {};
const mhdStatuses = new Set(((unmatched.libmicrohttpd || {}).statuses || []).map(Number));

function matchPath(target) {
    if (!target || !target.startsWith('/')) return null;
    const segs = target.split(/[?#]/)[0].split('/');
    let best = null;
    for (const t of templates) {
        if (t.segs.length !== segs.length) continue;
        const fits = t.segs.every((s, i) => (/^\{[^}]+\}$/.test(s) ? segs[i] !== '' : s === segs[i]));
        if (fits && (!best || t.params < best.params)) best = t;
    }
    return best;
}

// The key of a Responses object that describes a status: itself, its range (4XX), default.
function responseKey(responses, status) {
    const code = String(status);
    return [code, `${code[0]}XX`, 'default'].find((k) => responses && responses[k]);
}

function mediaType(s) {
    const [type, ...params] = s.split(';').map((p) => p.trim());
    const map = {};
    for (const p of params) {
        const eq = p.indexOf('=');
        if (eq > 0) map[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim().replace(/^"|"$/g, '').toLowerCase();
    }
    return { type: type.toLowerCase(), params: map };
}
function mediaMatches(documented, actual) {
    const d = mediaType(documented);
    const a = mediaType(actual);
    return d.type === a.type && Object.entries(d.params).every(([k, v]) => a.params[k] === v);
}

function ajvMessage(errors) {
    return (errors || [])
        .slice(0, 3)
        .map((e) => `${e.instancePath || '/'} ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''}${e.params && e.params.unevaluatedProperty ? ` (${e.params.unevaluatedProperty})` : ''}${e.params && e.params.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : ''}${e.params && e.params.allowedValue !== undefined ? ` ${JSON.stringify(e.params.allowedValue)}` : ''}`)
        .join('; ');
}

// The problems of a response against a response object ([] when it conforms).
function checkResponse(rec, response, where, isHead) {
    const problems = [];
    response = deref(response);
    const headers = rec.headers || {};
    for (const [name, h0] of Object.entries(response.headers || {})) {
        const h = deref(h0);
        const values = headers[name.toLowerCase()];
        if (!values) {
            if (h.required) problems.push(`required header ${name} missing`);
            continue;
        }
        if (values.length > 1) problems.push(`header ${name} sent ${values.length} times`);
        if (!h.schema) continue;
        const schema = h.schema.$ref ? pointer(h.schema.$ref) : h.schema;
        let value = values[0];
        if ((schema.type === 'integer' || schema.type === 'number') && /^-?\d+(\.\d+)?$/.test(value)) value = Number(value);
        const v = validator(h.schema, `${where} header ${name}`);
        if (!v(value)) problems.push(`header ${name}: ${JSON.stringify(values[0])}: ${ajvMessage(v.errors)}`);
    }
    const body = rec.body;
    if (body === null) {
        problems.push('body is not UTF-8');
        return problems;
    }
    const content = response.content || {};
    if (isHead || Object.keys(content).length === 0) {
        if (body !== '') problems.push(`${isHead ? 'a HEAD response' : 'no content is documented, yet the response'} has a body of ${body.length} bytes`);
        return problems;
    }
    const ctype = (headers['content-type'] || [])[0];
    if (!ctype) {
        problems.push('no Content-Type');
        return problems;
    }
    const key = Object.keys(content).find((k) => mediaMatches(k, ctype));
    if (!key) {
        problems.push(`Content-Type ${ctype} is not documented (${Object.keys(content).join(', ')})`);
        return problems;
    }
    const media = deref(content[key]);
    if (!media.schema) return problems;
    let instance = body;
    if (/^application\/([^;]*\+)?json$/.test(mediaType(key).type)) {
        try {
            instance = JSON.parse(body);
        } catch (e) {
            problems.push(`body is not JSON: ${e.message}`);
            return problems;
        }
    }
    const v = validator(media.schema, `${where} ${key}`);
    if (!v(instance)) problems.push(`body: ${ajvMessage(v.errors)}`);
    return problems;
}

// ------------------------------------------------------------------ the records
let text;
try {
    text = fs.readFileSync(recordsPath, 'utf8');
} catch (e) {
    die(`${recordsPath}: ${e.message}`);
}
const stats = { validated: 0, operations: new Map(), unknownPath: 0, otherMethod: 0, mhd: 0 };
const failures = [];
const lines = text.split('\n').filter((l) => l !== '');
lines.forEach((line, i) => {
    let rec;
    try {
        rec = JSON.parse(line);
    } catch (e) {
        die(`${recordsPath}:${i + 1}: ${e.message}`);
    }
    const headers = rec.headers || {};
    const fail = (why) => failures.push({ rec, why });
    const ctype = (headers['content-type'] || [''])[0];
    if (!headers['x-request-id'] && !/json/i.test(ctype) && mhdStatuses.has(rec.status)) {
        stats.mhd++;
        return;
    }
    if (!rec.method) {
        fail(`jobsd answered a request whose request line is not METHOD TARGET VERSION (${JSON.stringify(rec.requestLine)}): no operation describes it`);
        return;
    }
    const isHead = rec.method === 'HEAD';
    const t = matchPath(rec.target);
    let problems;
    if (!t) {
        if (!unmatched.unknownPath) return fail('no path matches and the document has no x-unmatched-requests.unknownPath');
        const rkey = responseKey(unmatched.unknownPath, rec.status);
        if (!rkey) return fail(`status ${rec.status} for a path no template matches (x-unmatched-requests.unknownPath: ${Object.keys(unmatched.unknownPath).join(', ')})`);
        stats.unknownPath++;
        problems = checkResponse(rec, unmatched.unknownPath[rkey], `x-unmatched-requests.unknownPath ${rkey}`, isHead);
    } else {
        const item = doc.paths[t.template];
        const m = rec.method.toLowerCase();
        const op = rec.method === rec.method.toUpperCase() && METHODS.includes(m) ? item[m] : undefined;
        if (!op) {
            if (!unmatched.otherMethod) return fail(`${rec.method} is not an operation of ${t.template} and the document has no x-unmatched-requests.otherMethod`);
            const rkey = responseKey(unmatched.otherMethod, rec.status);
            if (!rkey) return fail(`status ${rec.status} for ${rec.method}, not an operation of ${t.template} (x-unmatched-requests.otherMethod: ${Object.keys(unmatched.otherMethod).join(', ')})`);
            stats.otherMethod++;
            problems = checkResponse(rec, unmatched.otherMethod[rkey], `x-unmatched-requests.otherMethod ${rkey}`, isHead);
            const want = METHODS.filter((x) => x !== 'options' && item[x]).map((x) => x.toUpperCase()).sort();
            const got = ((headers.allow || [])[0] || '').split(',').map((s) => s.trim()).filter((s) => s).sort();
            if (rec.status === 405 && want.join() !== got.join()) problems.push(`Allow is "${(headers.allow || [''])[0]}", the document's methods of ${t.template} are ${want.join(', ')}`);
        } else {
            const key = `${rec.method} ${t.template}`;
            const statuses = stats.operations.get(key) || new Map();
            stats.operations.set(key, statuses);
            const code = String(rec.status);
            const rkey = responseKey(op.responses, rec.status);
            if (!rkey) return fail(`status ${code} is not documented for ${key} (${Object.keys(op.responses || {}).join(', ')})`);
            statuses.set(rkey, (statuses.get(rkey) || 0) + 1);
            problems = checkResponse(rec, op.responses[rkey], `${key} ${rkey}`, isHead);
        }
    }
    if (problems.length) fail(problems.join('; '));
    else stats.validated++;
});

// ------------------------------------------------------------------ the figures
const documented = [];
for (const [t, item] of Object.entries(doc.paths || {}))
    for (const m of METHODS) if (item[m]) documented.push({ key: `${m.toUpperCase()} ${t}`, statuses: Object.keys(item[m].responses || {}) });
const pairs = documented.reduce((n, d) => n + d.statuses.length, 0);
let coveredPairs = 0;
for (const d of documented) coveredPairs += d.statuses.filter((s) => (stats.operations.get(d.key) || new Map()).has(s)).length;
const uncovered = documented.filter((d) => !stats.operations.has(d.key)).map((d) => d.key);
const total = lines.length;
console.log(
    `check-contract: ${total} responses: ${stats.validated} valid, ${failures.length} not, ${stats.mhd} libmicrohttpd pages exempt; ` +
        `${stats.operations.size}/${documented.length} operations, ${coveredPairs}/${pairs} of their statuses, ` +
        `${stats.unknownPath} unknown-path and ${stats.otherMethod} other-method answers; ${Date.now() - began} ms`
);
if (uncovered.length) console.log(`check-contract: operations no test exercised: ${uncovered.join(', ')}`);
if (failures.length) {
    console.error(`check-contract: ${failures.length} response(s) not as ${docPath} describes them; the first ${Math.min(show, failures.length)}:`);
    for (const { rec, why } of failures.slice(0, show)) {
        const req = rec.method ? `${rec.method} ${(rec.target || '').slice(0, 120)}` : JSON.stringify(rec.requestLine);
        const body = rec.body === null ? '(not UTF-8)' : JSON.stringify(rec.body.slice(0, 300));
        console.error(`  ${rec.test}: ${req} -> ${rec.status}: ${why}\n    body: ${body}`);
    }
    // Failures grouped, so one cause shows once with its count.
    const groups = new Map();
    for (const { rec, why } of failures) {
        const t = matchPath(rec.target);
        const k = `${rec.method || '?'} ${t ? t.template : '(unknown path)'} ${rec.status}: ${why.replace(/"[^"]*"/g, '"…"').slice(0, 200)}`;
        groups.set(k, (groups.get(k) || 0) + 1);
    }
    console.error('check-contract: by kind:');
    for (const [k, n] of [...groups.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.error(`  ${n} x ${k}`);
    process.exit(1);
}
