"""Mouse Atlas: 6,954 single cells, 11 cell types, 2 sequencing technologies as groups (FCMI supplementary Table 1).

The cells are dataset 2 of Tran et al.'s batch-correction benchmark (Mouse Cell Atlas, Microwell-seq, Han et al.
2018, with Tabula Muris, Smart-seq2): a genes × cells expression table (15,006 genes) and a cell table whose
columns ct (cell type) and batchlb (batch = technology) give the class and the group. FCMI does not publish
its preprocessing; ours (stated in `built`): scale each cell to the median library size, log1p, keep the
n_genes most variable genes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..params import Param
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .download import RemoteFile, all_local, fetch_all, missing_message
from .sources import n_param, seed_param, subset_index

DATASET_ID = "mouse_atlas"
BASE_URL = "https://github.com/JinmiaoChenLab/Batch-effect-removal-benchmarking/raw/master/Data/dataset2/"
EXPRESSION = RemoteFile("filtered_total_batch1_seqwell_batch2_10x.txt.gz", BASE_URL + "filtered_total_batch1_seqwell_batch2_10x.txt.gz", "mouse_atlas")
CELLS = RemoteFile("filtered_total_sample_ext_organ_celltype_batch.txt.gz", BASE_URL + "filtered_total_sample_ext_organ_celltype_batch.txt.gz", "mouse_atlas")
FILES = (EXPRESSION, CELLS)
ERR_COLUMNS = "Mouse Atlas cell table {path} needs columns 'ct' (cell type) and 'batchlb' (batch); it has {have}"
ERR_CELLS = "Mouse Atlas: {missing} cells of the cell table are not columns of the expression table (e.g. {example})"


def load(options: dict, data_dir: Path | None) -> BiasedDataset:
    """Cells × top-variance genes (log1p of median-scaled expression); y = cell type, g = batch (technology)."""
    paths = fetch_all("Mouse Atlas", FILES, data_dir)
    cells = pd.read_csv(paths[CELLS.name], sep="\t", index_col=0)
    if not {"ct", "batchlb"} <= set(cells.columns):
        raise ValueError(ERR_COLUMNS.format(path=paths[CELLS.name], have=list(cells.columns)))
    # Read gene blocks as float32: the full table as float64 would take ~0.8 GB.
    blocks = []
    for chunk in pd.read_csv(paths[EXPRESSION.name], sep="\t", index_col=0, chunksize=2000):
        missing = cells.index.difference(chunk.columns)
        if len(missing):
            raise ValueError(ERR_CELLS.format(missing=len(missing), example=missing[0]))
        blocks.append(chunk[cells.index].to_numpy(dtype=np.float32))
    counts = np.concatenate(blocks).T  # cells × genes, in the cell table's order
    n_all_genes = counts.shape[1]
    class_names, y = np.unique(cells["ct"].astype(str).to_numpy(), return_inverse=True)
    group_names, g = np.unique(cells["batchlb"].astype(str).to_numpy(), return_inverse=True)
    index = subset_index(options["n"], options["seed"], y, g)
    library = counts.sum(axis=1, keepdims=True, dtype=np.float64)
    median = float(np.median(library))
    logged = np.log1p(counts * (median / np.maximum(library, 1e-12)).astype(np.float32))
    n_genes = options["n_genes"] or n_all_genes
    # Genes are chosen on all cells, so a subset keeps the features of the full set.
    genes = np.sort(np.argsort(-logged.var(axis=0), kind="stable")[:n_genes])
    X = np.ascontiguousarray(logged[np.ix_(index, genes)])
    subset = f"; stratified subset of {len(index):,} by cell type × batch (seed {options['seed']})" if options["n"] else ""
    return BiasedDataset(
        id=DATASET_ID, X=torch.from_numpy(X), y=y[index].astype(np.int64), g=g[index].astype(np.int64),
        group_names=list(group_names), class_names=list(class_names), n_clusters=len(class_names), options=dict(options),
        info=DatasetInfo(
            name="Mouse Atlas (single-cell RNA-seq, 2 technologies)", source=f"{BASE_URL} ({EXPRESSION.name}, {CELLS.name})",
            licence="public research data (Mouse Cell Atlas, Han et al. 2018; Tabula Muris, CC BY 4.0)",
            citation="Han et al. 2018, Mapping the mouse cell atlas by Microwell-seq (Cell); Tabula Muris Consortium 2018 "
                     "(Nature); Tran et al. 2020, A benchmark of batch-effect correction methods for single-cell RNA "
                     "sequencing data (Genome Biology), dataset 2; FCMI supplementary Table 1",
            built=(f"{len(cells):,} cells × {n_all_genes:,} genes; each cell scaled to the median library size "
                   f"({median:.4g}), log1p; the {len(genes):,} genes of highest variance kept "
                   f"(our preprocessing: FCMI does not publish theirs); y = cell type (ct, sorted), "
                   f"g = batch (batchlb, sorted: {', '.join(group_names)}){subset}"),
        ),
    )


def available(data_dir: Path | None) -> bool:
    return all_local(FILES, data_dir)


def needs(data_dir: Path | None) -> str:
    return "" if available(data_dir) else missing_message("Mouse Atlas", FILES, data_dir, "not in the data folder or the download cache")


SPEC = DatasetSpec(
    id=DATASET_ID, name="Mouse Atlas (single-cell)",
    summary="6,954 mouse cells, 11 cell types, measured with two sequencing technologies; group = technology (FCMI).",
    load=load,
    options=(
        n_param("6,954"), seed_param(),
        Param("n_genes", 2000, kind="int", low=0,
              help="Keep this many most variable genes after log1p (0 = all 15,006)."),
    ),
    available=available, needs=needs, offline=False, downloads=lambda options: True,
    size="6,954 vectors × 2,000 genes (of 15,006), 11 classes, 2 groups",
)
