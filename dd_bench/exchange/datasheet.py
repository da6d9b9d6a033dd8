"""The datasheet every export carries (``datasheet.json`` and its ``README.md`` rendering): what the set is (with its
class names in label order and the fingerprint of the data it was distilled from), how it was scored, what it costs,
where it came from and under which licence its source images are."""

from __future__ import annotations

import statistics
from typing import Any

# The source data's terms as their distributors state them (check the source before redistributing).
DATA_LICENCES = {
    "digits": "UCI Optical Recognition of Handwritten Digits (scikit-learn's copy): CC BY 4.0",
    "mnist": "MNIST (LeCun, Cortes, Burges): CC BY-SA 3.0",
    "fashion_mnist": "Fashion-MNIST (Zalando Research): MIT",
    "cifar10": "CIFAR-10 (Krizhevsky 2009): no licence stated; cite the technical report",
    "cifar100": "CIFAR-100 (Krizhevsky 2009): no licence stated; cite the technical report",
    "svhn": "SVHN (Netzer et al. 2011): non-commercial use only",
    "tiny_imagenet": ("Tiny-ImageNet (Stanford CS231n, from ImageNet): ImageNet terms of access, "
                      "non-commercial research"),
}


def _results(records: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        out.append({"protocol": f"{r.protocol} v{r.protocol_version}", "ranked": r.ranked, "model": r.model,
                    "label_source": (r.storage or {}).get("label_source"), "seeds": r.seeds,
                    "acc_mean": statistics.fmean(r.accuracies) if r.accuracies else None,
                    "acc_std": statistics.stdev(r.accuracies) if len(r.accuracies) > 1 else None,
                    "record": r.record_hash})
    return out


def datasheet(meta: dict[str, Any], *, fmt: str, records: list[Any], assets: dict[str, Any],
              files: list[str], data_fingerprint: str | None = None) -> dict[str, Any]:
    """``data_fingerprint``: the source data's, for a set whose provenance does not record it (the recorded one
    wins). With ``class_names`` it lets an importer check that its data is the data the set was distilled from."""
    from dd_bench import __version__
    from dd_bench.labels.registry import needs_at_evaluation
    from dd_bench.synset.labels_section import LabelsSection

    labels = LabelsSection.from_dict(meta.get("labels"))  # as written: a version-1 set's source is null
    space = meta.get("image_space") or {}
    jpeg = (meta.get("composition") or {}).get("kind") == "jpeg"  # image_store=jpeg
    stored_as = (meta.get("storage") or {}).get("dtype") if jpeg else meta.get("image_encoding")
    return {
        "format": f"dd-bench-export/{fmt}", "dd_bench_version": __version__, "method": meta.get("method"),
        "dataset": meta.get("dataset"), "ipc": meta.get("ipc"), "num_images": meta.get("num_images"),
        "class_names": meta.get("class_names"), "preset": meta.get("preset"), "set_hash": meta.get("set_hash"),
        "data_fingerprint": (meta.get("provenance") or {}).get("data_fingerprint") or data_fingerprint,
        "images": {"exported_as": "uint8 pixels decoded from the stored JPEG files (imagefolder: those files)"
                   if jpeg else "uint8 pixels" if meta.get("image_encoding") == "uint8" else
                   "pixels in [0, 1], de-normalised" + (" (ZCA inverted)" if space.get("space") == "zca" else ""),
                   "stored_space": space, "stored_encoding": meta.get("image_encoding"), "stored_as": stored_as,
                   "image_store": (meta.get("provenance") or {}).get("image_store")},
        "labels": {"source": labels.source, "kind": meta.get("label_kind"),
                   "needs_at_evaluation": needs_at_evaluation(labels),
                   "stored_label_keys": sorted(labels.stored),
                   "export": (f"labels materialised for protocol {assets['materialised']['protocol']} (stored fkd "
                              f"labels {assets['materialised']['key']}, {assets['materialised']['bytes']} bytes): "
                              f"evaluate with label_source=fkd eval={assets['materialised']['protocol']}; no "
                              "teacher needed, other protocols need the teachers"
                              if assets.get("materialised") else
                              "self-contained: the weights its labels need are in assets/"
                              if assets["needed"] and assets["self_contained"] else
                              "NOT self-contained: missing " + ", ".join(assets["missing"]) if assets["needed"]
                              else "self-contained: its labels need nothing at evaluation")},
        "assets": assets, "learned_lr": meta.get("learned_lr"),
        "recommended_protocol": meta.get("recommended_protocol"), "results": _results(records),
        "storage": meta.get("storage"), "provenance": meta.get("provenance"), "config": meta.get("config"),
        "licence": DATA_LICENCES.get(str(meta.get("dataset")), "unknown: check the source data's terms"),
        "files": files,
    }


def datasheet_markdown(sheet: dict[str, Any]) -> str:
    lines = [f"# {sheet['method']} on {sheet['dataset']}, IPC {sheet['ipc']}", "",
             f"Exported by dd-bench {sheet['dd_bench_version']} as `{sheet['format']}`; every field is in "
             "`datasheet.json`.", "",
             f"- images: {sheet['num_images']} ({sheet['images']['exported_as']}; stored as "
             f"{sheet['images'].get('stored_as') or sheet['images']['stored_encoding']} in "
             f"{sheet['images']['stored_space'].get('space')} space)",
             f"- labels: {sheet['labels']['source']} ({sheet['labels']['kind']}); {sheet['labels']['export']}",
             f"- learned lr: {sheet['learned_lr']}" if sheet["learned_lr"] is not None else "- learned lr: none",
             f"- storage: {(sheet['storage'] or {}).get('total_bytes')} bytes as stored"
             + (f", assets {sheet['assets']['bytes']} bytes" if sheet["assets"]["bytes"] else ""),
             f"- source data licence: {sheet['licence']}",
             f"- classes, in label order: {', '.join(map(str, sheet.get('class_names') or [])) or 'not recorded'}",
             f"- data fingerprint: {sheet.get('data_fingerprint') or 'not recorded'} (dd-bench import checks it)",
             f"- set hash: {sheet['set_hash']}", "", "## Results recorded for this set", ""]
    if sheet["results"]:
        lines += ["| protocol | model | labels | seeds | acc % |", "|---|---|---|---|---|"]
        for r in sheet["results"]:
            acc = "" if r["acc_mean"] is None else f"{r['acc_mean']:.2f}" + (
                f" +- {r['acc_std']:.2f}" if r["acc_std"] is not None else "")
            lines.append(f"| {r['protocol']}{'' if r['ranked'] else ' (not ranked)'} | {r['model']} | "
                         f"{r['label_source']} | {len(r['seeds'])} | {acc} |")
    else:
        lines.append("None recorded under the results directory used for the export.")
    return "\n".join(lines) + "\n"
