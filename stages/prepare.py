"""Stage prepare: raw dataset layout -> data/prepared/<dataset>-<crop>/ (resized images, manifests, data digest)."""

from dmlbench.identity import prepared_dir
from dmlbench.params.load import load_params
from dmlbench.pipeline import stage
from dmlbench.pipeline.prepare import prepare_folder, prepare_sections, raw_folder


def main() -> None:
    # Its sections only, so prepare reruns for data params, not for every method's code (check validated the rest).
    exp, data, prepare = prepare_sections(load_params())
    raw = raw_folder(exp.dataset, data.root)
    out = prepared_dir(exp.dataset, exp.crop)
    summary = prepare_folder(exp.dataset, exp.crop, raw, out, prepare)
    print(f"prepare: {raw} -> {out}: {summary}")


if __name__ == "__main__":
    stage.run(main)
