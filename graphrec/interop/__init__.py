"""Bridges to other graph-learning stacks: graphrec graphs out, trained embeddings back in.

* :mod:`graphrec.interop.dgl`: :func:`~graphrec.interop.dgl.to_dgl` / :func:`~graphrec.interop.dgl.from_dgl`
  (``pip install 'graphrec[dgl]'`` in an environment where DGL loads; see the README's DGL section).

Embeddings trained on the other side come back through
:func:`graphrec.jobs.bundle.bundle_from_embeddings`, so :class:`graphrec.recall.RecallEngine`
serves them like a graphrec model. Nothing here is imported by ``import graphrec``.
"""
