// A small TypeScript-SDK endpoint for the tracing tests: it shows the headers of each
// attempt's HTTP request (where the server puts `traceparent`/`tracestate`), which
// ctx.request().headers (the invocation's headers) does not. Served over h2c on
// 127.0.0.1:$PORT; RESTATE_TEST_NODE_MODULES, SIDE_EFFECTS_FILE and GATE_DIR as in app.mjs.
import * as fs from "node:fs";
import * as path from "node:path";

import { restate, serve } from "./serve.mjs";

const sleepMs = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The trace headers of this attempt's request, null where absent.
const traceHeaders = (ctx) => {
  const headers = ctx.request().attemptHeaders;
  const one = (name) => {
    const value = headers.get(name);
    return Array.isArray(value) ? value.join(",") : (value ?? null);
  };
  return { traceparent: one("traceparent"), tracestate: one("tracestate") };
};

const flakyTags = new Set();

const traced = restate.service({
  name: "Traced",
  handlers: {
    attemptHeaders: async (ctx) => traceHeaders(ctx),
    // Its own attempt's trace headers and those its callee's attempt got.
    callChild: async (ctx) => {
      const own = traceHeaders(ctx);
      const child = await ctx.serviceClient(traced).attemptHeaders();
      return { own, child };
    },
    // A one-way call: the callee starts a trace of its own, linked to this attempt.
    sendChild: async (ctx) => {
      ctx.serviceSendClient(traced).attemptHeaders();
      return traceHeaders(ctx);
    },
    fail: async (_ctx, msg) => {
      throw new restate.TerminalError(msg ?? "failed", { errorCode: 418 });
    },
    // Its first attempt fails (a retryable error), the second succeeds.
    flaky: async (ctx, tag) => {
      if (!flakyTags.has(tag)) {
        flakyTags.add(tag);
        throw new Error(`first attempt of ${tag} fails`);
      }
      return traceHeaders(ctx);
    },
    // Records each attempt's traceparent ("<tag> <traceparent>"), then waits for the
    // file GATE_DIR/<tag> (creating GATE_DIR/<tag>.waiting meanwhile).
    gated: async (ctx, tag) => {
      const own = traceHeaders(ctx);
      const file = process.env.SIDE_EFFECTS_FILE;
      if (file) fs.appendFileSync(file, `${tag} ${own.traceparent}\n`);
      const gateDir = process.env.GATE_DIR;
      if (gateDir) {
        fs.writeFileSync(path.join(gateDir, `${tag}.waiting`), "");
        while (!fs.existsSync(path.join(gateDir, tag))) await sleepMs(20);
      }
      return own;
    },
  },
  options: { retryPolicy: { initialInterval: 50 } },
});

serve(restate.endpoint().bind(traced), "ts tracing services");
