// Benchmark services on the TypeScript SDK (1.17.2, Node >= 22), h2c on 127.0.0.1:$PORT.
// RESTATE_TEST_NODE_MODULES points at the node_modules holding the SDK.
import { createRequire } from "node:module";
import * as http2 from "node:http2";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules =
  process.env.RESTATE_TEST_NODE_MODULES ?? path.resolve(here, "../../.tools/node/node_modules");
const require = createRequire(path.join(nodeModules, "..", "package.json"));
const restate = require("@restatedev/restate-sdk");

const greeter = restate.service({
  name: "Greeter",
  handlers: {
    greet: async (_ctx, name) => `Hello, ${name ? name : "World"}!`,
  },
});

const counter = restate.object({
  name: "Counter",
  handlers: {
    add: async (ctx, n) => {
      const next = ((await ctx.get("count")) ?? 0) + (n ?? 0);
      ctx.set("count", next);
      return next;
    },
    get: restate.handlers.object.shared(async (ctx) => (await ctx.get("count")) ?? 0),
  },
});

const steps = restate.workflow({
  name: "ThreeSteps",
  handlers: {
    run: async (ctx, input) => {
      const a = await ctx.run("one", async () => `${input}-1`);
      const b = await ctx.run("two", async () => `${a}-2`);
      return await ctx.run("three", async () => `${b}-3`);
    },
  },
});

const sleeper = restate.service({
  name: "Sleeper",
  handlers: {
    sleep: async (ctx, ms) => {
      await ctx.sleep(ms ?? 100);
      return "slept";
    },
  },
});

const port = Number(process.env.PORT);
const handler = restate.endpoint().bind(greeter).bind(counter).bind(steps).bind(sleeper).http2Handler();
http2.createServer(handler).listen(port, "127.0.0.1");
