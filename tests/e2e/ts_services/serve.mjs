// What every TypeScript test app shares: the SDK, resolved from the tools' node_modules
// (ES modules ignore NODE_PATH), and serving an endpoint on 127.0.0.1:$PORT until a
// SIGTERM/SIGINT.
//
// Environment:
//   PORT                       listening port (required)
//   RESTATE_TEST_NODE_MODULES  node_modules holding the SDK (default: <repo>/.tools/node/node_modules)
//   HTTP1=1                    serve HTTP/1.1 (request/response mode) instead of h2c
import { createRequire } from "node:module";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules =
  process.env.RESTATE_TEST_NODE_MODULES ??
  path.resolve(here, "../../../.tools/node/node_modules");
const require = createRequire(path.join(nodeModules, "..", "package.json"));

export const restate = require("@restatedev/restate-sdk");

export const serve = (endpoint, label) => {
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0) {
    console.error("PORT must be set to the port to listen on");
    process.exit(2);
  }
  const useHttp1 = process.env.HTTP1 === "1";
  const server = useHttp1
    ? http.createServer(endpoint.http1Handler())
    : http2.createServer(endpoint.http2Handler());
  server.listen(port, "127.0.0.1", () => {
    const mode = useHttp1 ? "HTTP/1.1" : "h2c";
    console.log(`${label} listening on 127.0.0.1:${port} (${mode}), node ${process.version}`);
  });
  const shutdown = (signal) => {
    console.log(`received ${signal}, exiting`);
    // Open bidi streams would keep server.close() waiting; the harness wants a prompt exit.
    server.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
};
