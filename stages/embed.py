"""Stage embed: the run's model + evaluation manifests -> embeddings/<run>/embeddings.pt (L2-normalised)."""

from dmlbench import stage
from dmlbench.identity import prepared_dir
from dmlbench.run_steps import embed_run
from dmlbench.stage_params import checked_run


def main(params: dict) -> None:
    exp, method, cfg, run = checked_run(params)
    splits = embed_run(params, method, cfg, run, run.paths, prepared_dir(exp.dataset, exp.crop))
    shapes = ", ".join(f"{name} {tuple(s['embeddings'].shape)}" for name, s in splits.items())
    print(f"embed: {run.name}: {shapes} -> {run.paths.embeddings}")


if __name__ == "__main__":
    stage.run(main)
