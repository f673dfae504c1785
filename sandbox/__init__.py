"""A loopback stand-in for the messaging providers (WhatsApp Cloud API, Google RBM, Twilio
SMS and Calls, SendGrid, Salesforce, HubSpot, our call-task and in-app endpoints): the real
request and answer shapes, a record of every accepted message, faults on demand, and signed
status webhooks. See docs/sandbox.md.
"""

from __future__ import annotations

from sandbox.faults import Faults
from sandbox.server import RunningSandbox, serve, start_in_thread

__all__ = ["Faults", "RunningSandbox", "serve", "start_in_thread"]
