"""Any other ``accept``: an Arrow IPC stream (schema, record batches, end marker).

An empty result is a stream with the schema alone, as from the real server.
"""

from __future__ import annotations

import pyarrow as pa

CONTENT_TYPE = "application/vnd.apache.arrow.stream"


class ArrowStream:
    def __init__(self, schema: pa.Schema) -> None:
        self._sink = pa.BufferOutputStream()
        self._writer = pa.ipc.new_stream(self._sink, schema)

    @property
    def size(self) -> int:
        return int(self._sink.tell())

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._writer.write_batch(batch)

    def finish(self) -> bytes:
        self._writer.close()
        return self._sink.getvalue().to_pybytes()  # type: ignore[no-any-return]
