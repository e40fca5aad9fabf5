"""The one PSP HTTP adapter: the HTTP client, its pool and time-outs, JSON, and what each answer proves.

Shared by the psp-caller (money calls), the reconciler (lookups by key, the settlement report) and the audit
(the simulator's own log), which import it and never each other's internals.
"""
