// Terminal errors carrying metadata (protocol V6 Failure.metadata), on the TypeScript SDK
// (@restatedev/restate-sdk 1.17.2, Node >= 22), served over h2c on 127.0.0.1:$PORT.
// Used by ../test_error_metadata.py against our server and the real restate-server.
//
// Environment:
//   PORT, RESTATE_TEST_NODE_MODULES   see serve.mjs
import { restate, serve } from "./serve.mjs";

const { TerminalError } = restate;

// What a caught TerminalError looked like to the handler.
const seen = (e) => ({ message: e.message, code: e.code, metadata: e.metadata ?? null });

const TEAPOT = { reason: "teapot", tier: "gold" };
// Keys not in alphabetical order: shows where the server keeps their order and where it sorts.
const UNORDERED = { zeta: "1", alpha: "", mid: "é" };

const failer = restate.service({
  name: "Failer",
  handlers: {
    fail: async (_ctx, msg) => {
      throw new TerminalError(msg, { errorCode: 418, metadata: TEAPOT });
    },
    failUnordered: async (_ctx, msg) => {
      throw new TerminalError(msg, { errorCode: 400, metadata: UNORDERED });
    },
    failPlain: async (_ctx, msg) => {
      throw new TerminalError(msg, { errorCode: 418 });
    },
    viaCall: async (ctx, msg) => {
      try {
        await ctx.serviceClient({ name: "Failer" }).fail(msg);
        return "no";
      } catch (e) {
        return seen(e);
      }
    },
    viaCallUnordered: async (ctx, msg) => {
      try {
        await ctx.serviceClient({ name: "Failer" }).failUnordered(msg);
        return "no";
      } catch (e) {
        return seen(e);
      }
    },
    viaRunUnordered: async (ctx, msg) => {
      try {
        await ctx.run("r", async () => {
          throw new TerminalError(msg, { errorCode: 422, metadata: UNORDERED });
        });
        return "no";
      } catch (e) {
        return seen(e);
      }
    },
    rethrow: async (ctx, msg) => {
      await ctx.serviceClient({ name: "Failer" }).fail(msg);
      return "no";
    },
    viaRun: async (ctx, msg) => {
      try {
        await ctx.run("r", async () => {
          throw new TerminalError(msg, { errorCode: 422, metadata: { step: "run" } });
        });
        return "no";
      } catch (e) {
        return seen(e);
      }
    },
    runThrows: async (ctx, msg) => {
      await ctx.run("r", async () => {
        throw new TerminalError(msg, { metadata: { step: "run" } });
      });
    },
    // An awakeable rejected with metadata (CompleteAwakeable -> signal notification).
    viaAwakeable: async (ctx, msg) => {
      const { id, promise } = ctx.awakeable();
      ctx.rejectAwakeable(id, new TerminalError(msg, { errorCode: 409, metadata: { via: "awk" } }));
      try {
        await promise;
        return "no";
      } catch (e) {
        return seen(e);
      }
    },
    viaAwakeableUnordered: async (ctx, msg) => {
      const { id, promise } = ctx.awakeable();
      ctx.rejectAwakeable(id, new TerminalError(msg, { errorCode: 409, metadata: UNORDERED }));
      try {
        await promise;
        return "no";
      } catch (e) {
        return seen(e);
      }
    },
    // Another invocation rejects this one's awakeable.
    awakeableFromOther: async (ctx, msg) => {
      const { id, promise } = ctx.awakeable();
      ctx.serviceSendClient({ name: "Failer" }).rejectAwakeable({ id, msg });
      try {
        await promise;
        return "no";
      } catch (e) {
        return seen(e);
      }
    },
    rejectAwakeable: async (ctx, req) => {
      ctx.rejectAwakeable(req.id, new TerminalError(req.msg, { errorCode: 409, metadata: UNORDERED }));
    },
    // The call and run failures are caught before a sleep; the server suspends the
    // invocation during the sleep (short inactivity timeout), so the answer comes from a
    // replay of the journaled failures.
    replayed: async (ctx, msg) => {
      let call = null;
      let run = null;
      try {
        await ctx.serviceClient({ name: "Failer" }).fail(msg);
      } catch (e) {
        call = seen(e);
      }
      try {
        await ctx.run("r", async () => {
          throw new TerminalError(msg, { errorCode: 422, metadata: { step: "run" } });
        });
      } catch (e) {
        run = seen(e);
      }
      await ctx.sleep(1500);
      return { call, run };
    },
  },
});

const failerFlow = restate.workflow({
  name: "FailerFlow",
  handlers: {
    run: async (_ctx, msg) => {
      throw new TerminalError(msg, { errorCode: 418, metadata: TEAPOT });
    },
  },
});

serve(restate.endpoint().bind(failer).bind(failerFlow), "failer services");
