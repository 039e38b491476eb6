"""The invoker: HTTP/2 and HTTP/1.1 attempts against SDK deployments, retries, timeouts."""
