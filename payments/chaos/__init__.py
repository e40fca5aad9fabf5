"""``payments chaos``: a seeded fault-injection campaign against the real stack (Jepsen-bank style).

Pure planning (``plan``), pure judging (``judge``) in the middle; the stack, the fault injector and the
HTTP clients at the edges (``stack``, ``inject``, ``client``); ``run`` ties one seed together.
"""
