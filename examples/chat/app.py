"""A chat room over WebSocket and Server-Sent Events, shared by every worker process.

With Redis, the messages reach the clients of every worker (and of every machine that
uses the same Redis)::

    pip install microdot-core microdot-redis
    redis-server --port 6379 --save '' --appendonly no &
    REDIS_URL=redis://127.0.0.1:6379/0 microdot run examples.chat.app:app --workers 4

then open http://127.0.0.1:5000 in a few browser tabs (``?transport=sse`` uses
Server-Sent Events instead of a WebSocket). Without ``REDIS_URL`` the memory broker
serves one process (``microdot run examples.chat.app:app``). The room keeps its last
100 messages: a newcomer sees them, and a client that reconnects gets what it missed.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, Optional, Tuple, Union, cast

from microdot import Microdot, Request, Response, send_file
from microdot.pubsub import PubSub, PubSubError
from microdot.websocket import WebSocket, with_websocket

logger = logging.getLogger(__name__)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOM = 'chat'

app = Microdot()
pubsub = PubSub(app, os.environ.get('REDIS_URL', 'memory://'))
pubsub.durable(ROOM, retention=100)


def chat_message(data: Any) -> Optional[Dict[str, str]]:
    """The message to publish for what a client sent (``{"name": ..., "text": ...}``
    as JSON text or a dict), or None if it is not one."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    fields = cast(Dict[str, Any], data)
    name, text = fields.get('name'), fields.get('text')
    if not isinstance(name, str) or not isinstance(text, str) or not text.strip():
        return None
    return {'name': name.strip()[:32] or 'anonymous', 'text': text.strip()[:500]}


@app.get('/')
async def index(request: Request) -> Response:
    return send_file(os.path.join(HERE, 'index.html'))


@app.get('/events')
async def events(request: Request) -> Tuple[Any, int, Dict[str, str]]:
    """The room as Server-Sent Events: a new client gets the retained messages first,
    a reconnecting one (``Last-Event-ID``) what it missed."""
    return pubsub.sse_response(request, ROOM, last_event_id='0')


@app.post('/messages')
async def post_message(request: Request) -> Tuple[str, int]:
    """Say something (the SSE clients' way; WebSocket clients send on the socket)."""
    message = chat_message(request.json)
    if message is None:
        return 'expected {"name": "...", "text": "..."}', 400
    try:
        await pubsub.publish(ROOM, message)
    except PubSubError as exc:  # Redis unreachable: say so, the page may retry
        return str(exc), 503
    return '', 204


@app.route('/ws')
@with_websocket
async def websocket(request: Request, ws: WebSocket) -> None:
    """The room over a WebSocket: what the client sends is published to everyone."""
    async def received(data: Union[str, bytes]) -> None:
        message = chat_message(data)
        if message is not None:
            try:
                await pubsub.publish(ROOM, message)
            except PubSubError as exc:
                logger.warning('Message dropped: %s', exc)

    # ?last=0: the retained messages first (the page asks for them when it connects)
    await pubsub.forward_to_websocket(ws, ROOM, on_receive=received,
                                      last_event_id=request.args.get('last'))
