// Test services on the TypeScript SDK (@restatedev/restate-sdk 1.17.2, Node >= 22), served
// over h2c on 127.0.0.1:$PORT. Same names and behaviour as ../py_services/app.py.
//
// Environment:
//   PORT, RESTATE_TEST_NODE_MODULES, HTTP1   see serve.mjs
//   SIDE_EFFECTS_FILE          Steps appends "<tag> stepN" lines here (skipped when unset)
//   GATE_DIR                   Steps/threeSteps creates GATE_DIR/<tag>.waiting when step3 starts, then
//                              waits for the file GATE_DIR/<tag> before recording step3
//   IDENTITY_KEY               serve only requests signed by this request identity key
//                              (publickeyv1_...); others get 401
import * as fs from "node:fs";
import * as path from "node:path";

import { restate, serve } from "./serve.mjs";

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
    // The invocation's request headers, as the handler sees them.
    headers: async (ctx) => Object.fromEntries(ctx.request().headers),
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


// ---- building blocks: timers, calls, sagas, awakeables, workflows, cancellation --------

const sleepOnce = async (ctx, req) => {
  await ctx.sleep(req.ms);
  await ctx.run("woke", async () => recordSideEffect(`woke ${req.tag} ${Date.now()}`));
  return "woke";
};

const travel = restate.service({
  name: "Travel",
  handlers: {
    reserve: async (ctx, req) => {
      await ctx.run("record", async () => recordSideEffect(`reserve ${req.tag} ${req.what}`));
      if (req.fail) throw new restate.TerminalError(`${req.what} unavailable`, { errorCode: 409 });
      return `${req.what} reserved`;
    },
    cancel: async (ctx, req) => {
      await ctx.run("record", async () => recordSideEffect(`cancel ${req.tag} ${req.what}`));
      return `${req.what} cancelled`;
    },
  },
});

const saga = restate.service({
  name: "Saga",
  handlers: {
    // Three reservations; the third fails terminally, so the first two are undone in
    // reverse order.
    book: async (ctx, tag) => {
      const compensations = [];
      try {
        for (const what of ["flight", "hotel", "car"]) {
          await ctx.serviceClient(travel).reserve({ tag, what, fail: what === "car" });
          compensations.push(what);
        }
        return "booked";
      } catch (e) {
        if (!(e instanceof restate.TerminalError)) throw e;
        for (const what of compensations.reverse()) {
          await ctx.serviceClient(travel).cancel({ tag, what });
        }
        throw e;
      }
    },
  },
});

const fanOut = restate.service({
  name: "FanOut",
  handlers: {
    greetMany: async (ctx, n) => {
      const calls = [];
      for (let i = 0; i < n; i++) calls.push(ctx.serviceClient(greeter).greet(`${i}`));
      return await restate.RestatePromise.all(calls);
    },
    addMany: async (ctx, req) => {
      const calls = [];
      for (let i = 0; i < req.n; i++) calls.push(ctx.objectClient(counter, req.key).add(1));
      return await restate.RestatePromise.all(calls);
    },
    sendLater: async (ctx, req) => {
      const handle = ctx
        .objectSendClient(counter, req.key)
        .add(1, restate.rpc.sendOpts({ delay: { milliseconds: req.ms } }));
      return await handle.invocationId;
    },
  },
});

const awaker = restate.service({
  name: "Awaker",
  handlers: {
    wait: async (ctx, tag) => {
      const { id, promise } = ctx.awakeable();
      await ctx.run("publish", async () => recordSideEffect(`awk ${tag} ${id}`));
      return `got ${await promise}`;
    },
    resolve: async (ctx, req) => {
      ctx.resolveAwakeable(req.id, req.value);
    },
  },
});

const payment = restate.workflow({
  name: "Payment",
  handlers: {
    run: async (ctx, req) => {
      const key = ctx.key;
      ctx.set("status", "reserving");
      await ctx.run("reserve", async () => recordSideEffect(`reserve ${key} ${req.amount}`));
      ctx.set("status", "waiting");
      const approved = await ctx.promise("approval").get();
      if (approved) {
        await ctx.run("charge", async () => recordSideEffect(`charge ${key}`));
        ctx.set("status", "completed");
        return "completed";
      }
      await ctx.run("release", async () => recordSideEffect(`release ${key}`));
      ctx.set("status", "cancelled");
      return "cancelled";
    },
    approve: async (ctx) => {
      await ctx.promise("approval").resolve(true);
      return "approved";
    },
    decline: async (ctx) => {
      await ctx.promise("approval").resolve(false);
      return "declined";
    },
    status: async (ctx) => (await ctx.get("status")) ?? "unknown",
  },
});

const canceller = restate.service({
  name: "Canceller",
  handlers: {
    // Blocked in a long sleep; a cancel makes it run its compensation and fail.
    longSleep: async (ctx, tag) => {
      try {
        await ctx.sleep(60_000);
        return "woke";
      } catch (e) {
        if (e instanceof restate.TerminalError) {
          await ctx.run("compensate", async () => recordSideEffect(`compensate ${tag}`));
        }
        throw e;
      }
    },
    // Waits for a child blocked in a long sleep; cancelling this one cancels the child.
    parentOfLongSleep: async (ctx, tag) => await ctx.serviceClient(canceller).longSleep(tag),
    // A side effect that never succeeds: retried forever until killed.
    stuck: async (ctx, tag) => {
      await ctx.run("forever", async () => {
        recordSideEffect(`try ${tag}`);
        throw new Error("still failing");
      });
      return "unreachable";
    },
  },
});

const firstAttempts = new Set();

const random = restate.service({
  name: "Random",
  handlers: {
    // Deterministic randomness: the same values on every attempt of one invocation.
    values: async (ctx, tag) => {
      const r = ctx.rand.random();
      const u = ctx.rand.uuidv4();
      recordSideEffect(`rand ${tag} ${r} ${u}`);
      if (!firstAttempts.has(tag)) {
        firstAttempts.add(tag);
        throw new Error("fail the first attempt");
      }
      return { r, u };
    },
  },
});

const retryKill = restate.service({
  name: "RetryKill",
  handlers: {
    always: async (ctx, tag) => {
      recordSideEffect(`attempt ${tag}`);
      throw new Error(`boom ${tag}`);
    },
  },
  options: { retryPolicy: { maxAttempts: 3, onMaxAttempts: "kill", initialInterval: 50 } },
});

const retryPause = restate.service({
  name: "RetryPause",
  handlers: {
    untilGate: async (ctx, tag) => {
      recordSideEffect(`attempt ${tag}`);
      const gate = process.env.GATE_DIR ? path.join(process.env.GATE_DIR, tag) : "";
      if (!gate || !fs.existsSync(gate)) throw new Error(`gate ${tag} closed`);
      return `passed ${tag}`;
    },
  },
  options: { retryPolicy: { maxAttempts: 2, onMaxAttempts: "pause", initialInterval: 50 } },
});

const flipAttempts = new Map();

const nondeterministic = restate.service({
  name: "Nondeterministic",
  handlers: {
    // Journals a different step on its second attempt: a journal mismatch (570).
    flip: async (ctx, tag) => {
      const attempt = (flipAttempts.get(tag) ?? 0) + 1;
      flipAttempts.set(tag, attempt);
      await ctx.run(attempt === 1 ? "first" : "second", async () => "done");
      if (attempt === 1) throw new Error("fail after the first step");
      return "unreachable";
    },
  },
  options: { retryPolicy: { maxAttempts: 3, onMaxAttempts: "kill", initialInterval: 50 } },
});

const sleeper = restate.service({
  name: "Sleeper",
  handlers: {
    // A durable timer: with a short inactivity timeout the invocation suspends meanwhile.
    sleep: async (ctx, ms) => {
      await ctx.sleep(ms ?? 0);
      return "slept";
    },
    sleepOnce,
  },
});

const endpoint = restate
  .endpoint()
  .bind(greeter)
  .bind(counter)
  .bind(lazyCounter)
  .bind(steps)
  .bind(flaky)
  .bind(sleeper)
  .bind(travel)
  .bind(saga)
  .bind(fanOut)
  .bind(awaker)
  .bind(payment)
  .bind(canceller)
  .bind(random)
  .bind(retryKill)
  .bind(retryPause)
  .bind(nondeterministic);
if (process.env.IDENTITY_KEY) endpoint.withIdentityV1(process.env.IDENTITY_KEY);

// HTTP1=1 serves HTTP/1.1 in request/response mode (register with use_http_11).
serve(endpoint, "ts test services");
