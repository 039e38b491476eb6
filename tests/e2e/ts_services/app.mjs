// Test services on the TypeScript SDK (@restatedev/restate-sdk 1.17.2, Node >= 22), served
// over h2c on 127.0.0.1:$PORT. Same names and behaviour as ../py_services/app.py.
//
// Environment:
//   PORT                       listening port (required)
//   RESTATE_TEST_NODE_MODULES  node_modules holding the SDK (default: <repo>/.tools/node/node_modules)
//   SIDE_EFFECTS_FILE          Steps appends "<tag> stepN" lines here (skipped when unset)
//   GATE_DIR                   Steps/threeSteps creates GATE_DIR/<tag>.waiting when step3 starts, then
//                              waits for the file GATE_DIR/<tag> before recording step3
import { createRequire } from "node:module";
import * as fs from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

// ES modules ignore NODE_PATH; resolve the SDK from the tools' node_modules explicitly.
const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules =
  process.env.RESTATE_TEST_NODE_MODULES ??
  path.resolve(here, "../../../.tools/node/node_modules");
const require = createRequire(path.join(nodeModules, "..", "package.json"));
const restate = require("@restatedev/restate-sdk");

const sleepMs = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const recordSideEffect = (line) => {
  const file = process.env.SIDE_EFFECTS_FILE;
  if (file) fs.appendFileSync(file, `${line}\n`);
};

const greeter = restate.service({
  name: "Greeter",
  handlers: {
    greet: async (_ctx, name) => `Hello, ${name ? name : "World"}!`,
    fail: async (_ctx, msg) => {
      throw new restate.TerminalError(msg ?? "failed", { errorCode: 418 });
    },
    failDefault: async (_ctx, msg) => {
      throw new restate.TerminalError(msg ?? "failed");
    },
  },
});

// The add logic shared by Counter and LazyCounter.
const addTo = async (ctx, n) => {
  const next = ((await ctx.get("count")) ?? 0) + (n ?? 0);
  ctx.set("count", next);
  return next;
};

const counter = restate.object({
  name: "Counter",
  handlers: {
    add: async (ctx, n) => addTo(ctx, n),
    get: restate.handlers.object.shared(async (ctx) => (await ctx.get("count")) ?? 0),
    reset: async (ctx) => {
      ctx.clearAll();
    },
    // Holds the key's exclusive lock for `ms` (sleeping in-process, inside a run) before
    // adding, so a test can watch shared handlers run meanwhile.
    slowAdd: async (ctx, req) => {
      await ctx.run("pause", async () => {
        await sleepMs(req?.ms ?? 0);
      });
      return addTo(ctx, req?.n);
    },
    keys: restate.handlers.object.shared(async (ctx) => (await ctx.stateKeys()).sort()),
  },
});

const lazyCounter = restate.object({
  name: "LazyCounter",
  handlers: {
    add: async (ctx, n) => addTo(ctx, n),
    get: restate.handlers.object.shared(async (ctx) => (await ctx.get("count")) ?? 0),
  },
  options: { enableLazyState: true },
});

const waitForGate = async (tag) => {
  const dir = process.env.GATE_DIR;
  if (!dir) return;
  // Tell the test that step3 is running, so step2's result is already journaled.
  fs.writeFileSync(path.join(dir, `${tag}.waiting`), "");
  const gate = path.join(dir, tag);
  while (!fs.existsSync(gate)) await sleepMs(50);
};

const steps = restate.service({
  name: "Steps",
  handlers: {
    // Three journaled steps, each leaving a line in SIDE_EFFECTS_FILE when it executes.
    // step3 first waits for GATE_DIR/<tag>, so a test can kill the endpoint after step2.
    threeSteps: async (ctx, tag) => {
      await ctx.run("step1", async () => {
        recordSideEffect(`${tag} step1`);
      });
      await ctx.run("step2", async () => {
        recordSideEffect(`${tag} step2`);
      });
      await ctx.run("step3", async () => {
        await waitForGate(tag);
        recordSideEffect(`${tag} step3`);
      });
      return `done ${tag}`;
    },
  },
});

// In memory, per process: a restarted endpoint fails once more per tag.
const attempts = new Map();

const flaky = restate.service({
  name: "Flaky",
  handlers: {
    failOnce: async (_ctx, tag) => {
      const attempt = (attempts.get(tag) ?? 0) + 1;
      attempts.set(tag, attempt);
      if (attempt === 1) throw new Error(`failOnce(${tag}): transient failure on attempt 1`);
      return attempt;
    },
  },
});

const sleeper = restate.service({
  name: "Sleeper",
  handlers: {
    // A durable timer: with a short inactivity timeout the invocation suspends meanwhile.
    sleep: async (ctx, ms) => {
      await ctx.sleep(ms ?? 0);
      return "slept";
    },
  },
});

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error("PORT must be set to the port to listen on");
  process.exit(2);
}

const endpoint = restate
  .endpoint()
  .bind(greeter)
  .bind(counter)
  .bind(lazyCounter)
  .bind(steps)
  .bind(flaky)
  .bind(sleeper);

// HTTP1=1 serves HTTP/1.1 in request/response mode (register with use_http_11).
const useHttp1 = process.env.HTTP1 === "1";
const server = useHttp1
  ? http.createServer(endpoint.http1Handler())
  : http2.createServer(endpoint.http2Handler());
server.listen(port, "127.0.0.1", () => {
  const mode = useHttp1 ? "HTTP/1.1" : "h2c";
  console.log(`ts test services listening on 127.0.0.1:${port} (${mode}), node ${process.version}`);
});

const shutdown = (signal) => {
  console.log(`received ${signal}, exiting`);
  // Open bidi streams would keep server.close() waiting; the harness wants a prompt exit.
  server.close();
  process.exit(0);
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
