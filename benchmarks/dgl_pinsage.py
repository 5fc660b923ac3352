"""Example and benchmark: DGL's PinSAGE recipe trained on graphrec's graph, served by graphrec.

Runs in the DGL lane's environment (``make venv-dgl``; DGL 2.1 loads only beside torch 2.2.1)::

    DGLBACKEND=pytorch .venv-dgl/bin/python benchmarks/dgl_pinsage.py \\
        --out benchmarks/results/dgl_pinsage.json

What it shows, end to end:

1. ``graphrec.interop.dgl.to_dgl`` turns the sample's training graph (users, notes, tags, authors;
   weighted relations and their reverses; tags and authors as note data) into a DGL heterograph.
2. PinSAGE, as in DGL's ``examples/pytorch/pinsage`` (re-written here in a compact form): note
   inputs are a learned id embedding plus the mean of the note's tag embeddings plus its author's
   embedding; neighbourhoods come from ``dgl.sampling.PinSAGESampler`` (random walks
   note→user→note, restart 0.5, the top ``--neighbors`` by visit count, visit counts as weights);
   ``--layers`` weighted SAGE convolutions; training pairs are a note and a note two hops away on
   a random walk, against a random note, with the recipe's margin loss and per-note bias.
3. The note embeddings come back with ``graphrec.jobs.bundle.bundle_from_embeddings`` (user
   vectors folded in from each user's history, the request-time rule, since PinSAGE learns notes
   only) and :class:`graphrec.recall.RecallEngine` serves them.

Protocol: ``data/sample``, the demo's temporal split (the last 20% of engagement time is test),
full ranking with training notes excluded, recall@20 and NDCG@20 of what the engine returns.
Compared on the same split and graph: graphrec's GNN (``GNNConfig()`` defaults, tag and author
side-info; no text vectors in either model, since the DGL environment has no
sentence-transformers), each served with the embedding channel alone and with all channels
(embedding + Swing + tags + popularity, the engine's defaults), and most-popular.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import set_threads, write_json

from graphrec._table import format_table
from graphrec.evaluate import evaluate_scorer, relevance_matrix, temporal_split
from graphrec.graph import ENGAGES, HeteroGraph, build_graph, side_info_from_graph
from graphrec.io import read_interactions, read_notes
from graphrec.jobs.bundle import bundle_from_embeddings
from graphrec.model import GNNConfig, GNNRecommender, MostPopular
from graphrec.recall import ChannelConfig, RecallEngine

REV_ENGAGES = ("note", "rev_engages", "user")
K = 20


def train_pinsage(graph: HeteroGraph, args: argparse.Namespace) -> tuple[np.ndarray, dict[str, Any]]:
    """PinSAGE note embeddings ``(n_notes, dim)`` trained for ``args.seconds`` (see the docstring)."""
    import dgl
    import torch
    from torch import nn

    from graphrec.interop.dgl import to_dgl

    dgl.seed(args.seed)
    torch.manual_seed(args.seed)
    g = to_dgl(graph, side_info=side_info_from_graph(graph))
    ui = g.edge_type_subgraph([ENGAGES, REV_ENGAGES])
    n_notes, n_users = g.num_nodes("note"), g.num_nodes("user")
    note_data = g.nodes["note"].data
    tags = note_data["tags"] + 1 if "tags" in note_data and note_data["tags"].shape[1] else None  # 0 = padding
    authors = note_data["author"] + 1 if "author" in note_data else None
    n_tags = g.num_nodes("tag") if "tag" in g.ntypes else 0

    class Projector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.note = nn.Embedding(n_notes, args.dim)
            self.tag = nn.EmbeddingBag(n_tags + 1, args.dim, mode="mean", padding_idx=0)
            self.author = nn.Embedding(n_users + 1, args.dim, padding_idx=0)
            for m in (self.note, self.tag, self.author):
                nn.init.xavier_uniform_(m.weight)

        def forward(self, nids: torch.Tensor) -> torch.Tensor:
            h = self.note(nids)
            if tags is not None:
                h = h + self.tag(tags[nids])
            if authors is not None:
                h = h + self.author(authors[nids])
            return h

    class WeightedSAGEConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q, self.w = nn.Linear(args.dim, args.dim), nn.Linear(2 * args.dim, args.dim)
            self.dropout = nn.Dropout(args.dropout)

        def forward(self, block: Any, h_src: torch.Tensor, h_dst: torch.Tensor) -> torch.Tensor:
            import dgl.function as fn

            with block.local_scope():
                block.srcdata["n"] = torch.relu(self.q(self.dropout(h_src)))
                block.edata["w"] = block.edata["weights"].float()
                block.update_all(fn.u_mul_e("n", "w", "m"), fn.sum("m", "n"))
                block.update_all(fn.copy_e("w", "m"), fn.sum("m", "ws"))
                n = block.dstdata["n"] / block.dstdata["ws"].unsqueeze(1).clamp(min=1)
                z = torch.relu(self.w(self.dropout(torch.cat([n, h_dst], 1))))
                return z / z.norm(dim=1, keepdim=True).clamp(min=1e-12)

    class PinSAGE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = Projector()
            self.convs = nn.ModuleList(WeightedSAGEConv() for _ in range(args.layers))
            self.bias = nn.Parameter(torch.zeros(n_notes))

        def forward(self, blocks: list[Any]) -> torch.Tensor:
            h = self.proj(blocks[0].srcdata[dgl.NID])
            h_out = self.proj(blocks[-1].dstdata[dgl.NID])
            for conv, block in zip(self.convs, blocks, strict=True):
                h = conv(block, h, h[: block.num_dst_nodes()])
            return h_out + h

        def score(self, pairs: Any, h: torch.Tensor) -> torch.Tensor:
            src, dst = pairs.edges()
            nid = pairs.ndata[dgl.NID]
            return (h[src] * h[dst]).sum(1) + self.bias[nid[src]] + self.bias[nid[dst]]

    samplers = [
        dgl.sampling.PinSAGESampler(ui, "note", "user", 2, 0.5, args.walks, args.neighbors) for _ in range(args.layers)
    ]

    def blocks_for(seeds: torch.Tensor, exclude: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[Any]:
        blocks: list[Any] = []
        for sampler in samplers:
            frontier = sampler(seeds)
            if exclude is not None:  # the recipe: no edge may give a training pair away
                eids = frontier.edge_ids(*exclude, return_uv=True)[2]
                if len(eids):
                    frontier = dgl.remove_edges(frontier, eids)
            block = dgl.to_block(frontier, seeds)
            block.edata["weights"] = frontier.edata["weights"][block.edata[dgl.EID]]
            seeds = block.srcdata[dgl.NID]
            blocks.insert(0, block)
        return blocks

    model = PinSAGE()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    t0, steps, losses = time.perf_counter(), 0, []
    model.train()
    while time.perf_counter() - t0 < args.seconds:
        heads = torch.randint(0, n_notes, (args.batch,))
        tails = dgl.sampling.random_walk(ui, heads, metapath=[REV_ENGAGES, ENGAGES])[0][:, 2]
        negs = torch.randint(0, n_notes, (args.batch,))
        ok = tails >= 0
        heads, tails, negs = heads[ok], tails[ok], negs[ok]
        pos = dgl.graph((heads, tails), num_nodes=n_notes)
        neg = dgl.graph((heads, negs), num_nodes=n_notes)
        pos, neg = dgl.compact_graphs([pos, neg])
        blocks = blocks_for(pos.ndata[dgl.NID], (torch.cat([heads, heads]), torch.cat([tails, negs])))
        h = model(blocks)
        loss = (model.score(neg, h) - model.score(pos, h) + 1).clamp(min=0).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        steps += 1
    train_seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(blocks_for(b)) for b in torch.arange(n_notes).split(4096)])
    info = {
        "train_seconds": train_seconds,
        "steps": steps,
        "loss_first_50": float(np.mean(losses[:50])),
        "loss_last_50": float(np.mean(losses[-50:])),
        "seconds_with_inference": time.perf_counter() - t0,
    }
    return out.numpy(), info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/sample", help="a folder with interactions.parquet and notes.jsonl")
    ap.add_argument("--seconds", type=float, default=120.0, help="PinSAGE training time")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--walks", type=int, default=10, help="random walks per note for its neighbourhood")
    ap.add_argument("--neighbors", type=int, default=10, help="neighbours kept per note (by visit count)")
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="artifacts/dgl_pinsage")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)

    data = Path(args.data)
    interactions, notes = read_interactions(data / "interactions.parquet"), read_notes(data / "notes.jsonl")
    split = temporal_split(interactions, test_fraction=0.2)
    graph = build_graph(split.train, notes)
    users, note_map = graph.id_map("user"), graph.id_map("note")
    train, _ = relevance_matrix(split.train, users, note_map)
    test, dropped = relevance_matrix(split.test, users, note_map)
    work = Path(args.work)

    rows: dict[str, dict[str, float]] = {}
    timing: dict[str, Any] = {}
    rows["popularity"] = evaluate_scorer(MostPopular().fit(train), train, test, ks=(K,), show_progress=False)

    t = time.perf_counter()
    gnn = GNNRecommender(GNNConfig(), show_progress=False).fit(graph, side_info_from_graph(graph))
    timing["graphrec_gnn"] = {"train_seconds": time.perf_counter() - t, "epochs": gnn.log_.epochs_run}
    pinsage, timing["pinsage"] = train_pinsage(graph, args)

    channel_sets = {"embedding": ChannelConfig(weights={"embedding": 1.0}), "all channels": ChannelConfig()}
    for name, kwargs in (
        ("graphrec GNN", {"note_embeddings": gnn.note_embeddings_, "user_embeddings": gnn.user_embeddings_}),
        ("DGL PinSAGE", {"note_embeddings": pinsage}),
    ):
        out = bundle_from_embeddings(
            graph, work / name.replace(" ", "_"), interactions=split.train, swing_top_k=100, **kwargs
        )
        for label, cfg in channel_sets.items():
            engine = RecallEngine.load(out, cfg)
            rows[f"{name}, served ({label})"] = evaluate_scorer(
                engine.scorer(users.ids, K), train, test, ks=(K,), show_progress=False
            )

    cols = [f"recall@{K}", f"ndcg@{K}", f"long_tail_recall@{K}", f"coverage@{K}"]
    print(format_table(["model", *cols], [[n, *(f"{m[c]:.4f}" for c in cols)] for n, m in rows.items()]))
    print(
        f"train: graphrec GNN {timing['graphrec_gnn']['train_seconds']:.1f} s ({timing['graphrec_gnn']['epochs']} epochs), "
        f"PinSAGE {timing['pinsage']['train_seconds']:.1f} s ({timing['pinsage']['steps']} steps, loss "
        f"{timing['pinsage']['loss_first_50']:.3f} -> {timing['pinsage']['loss_last_50']:.3f})"
    )
    if args.out:
        import dgl
        import torch

        write_json(
            args.out,
            {
                "metrics": rows,
                "timing": timing,
                "args": vars(args),
                "test_pairs_dropped": dropped,
                "versions": {"dgl": dgl.__version__, "torch": torch.__version__},
            },
        )


if __name__ == "__main__":
    main()
