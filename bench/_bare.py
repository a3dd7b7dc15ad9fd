"""The baseline endpoint: same server stack, only parses the JSON body and answers 200."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/v1/batch")
async def batch(request: Request) -> JSONResponse:
    payload = orjson.loads(await request.body())
    return JSONResponse({"success": True, "accepted": len(payload["batch"])})


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
