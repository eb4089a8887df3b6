"""Stage prepare: raw dataset layout -> data/prepared/<dataset>-<crop>/ (resized images + manifests)."""

from dmlbench import stage
from dmlbench.config import section
from dmlbench.prepare_folder import prepare_folder, raw_folder
from dmlbench.identity import prepared_dir
from dmlbench.sections import DataConfig, PrepareConfig, data_selection


def main(params: dict) -> None:
    exp = data_selection(params)
    raw = raw_folder(exp.dataset, section(params, "data", DataConfig).root)
    out = prepared_dir(exp.dataset, exp.crop)
    summary = prepare_folder(exp.dataset, exp.crop, raw, out, section(params, "prepare", PrepareConfig))
    print(f"prepare: {raw} -> {out}: {summary}")


if __name__ == "__main__":
    stage.run(main)
