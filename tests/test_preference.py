"""Preference tuning (DPO, ORPO): the data, the losses, and runs judged by what the model now prefers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import preference_dataset
import pytest
from cli_helpers import cli
from test_training import ListSink

from finetune_gui.core.config import RunConfig
from finetune_gui.core.data.formats import RowProblem, detect_format, to_example
from finetune_gui.core.events import Eval, Failed, Finished, Learned, Step
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.recipe import run_training

# ------------------------------------------------------------------------------------------------ data


def test_preference_rows_are_detected_as_text_as_conversations_and_with_a_system_prompt():
    text = {"prompt": "Hi?", "chosen": "Aye, hello!", "rejected": "Hello."}
    assert detect_format([text]) == "preference"
    example = to_example(text, "preference")
    assert example.messages == (("user", "Hi?"),) and example.chosen == "Aye, hello!"

    shared = [{"role": "system", "content": "Be a cook."}, {"role": "user", "content": "Soup?"}]
    conversations = {
        "chosen": [*shared, {"role": "assistant", "content": "Aye, hot soup."}],
        "rejected": [*shared, {"role": "assistant", "content": "Soup."}],
    }
    example = to_example(conversations, detect_format([conversations]))
    assert example.messages == (("system", "Be a cook."), ("user", "Soup?"))
    assert (example.chosen, example.rejected) == ("Aye, hot soup.", "Soup.")

    with_system = {**text, "system": "You are a ship's cook."}
    assert to_example(with_system, "preference").messages[0] == ("system", "You are a ship's cook.")
    # A prompt given as messages, with answers as one-turn conversations.
    listed = {
        "prompt": [{"role": "user", "content": "Tea?"}],
        "chosen": [{"role": "assistant", "content": "Aye, sweet tea."}],
        "rejected": [{"role": "assistant", "content": "Tea."}],
    }
    assert to_example(listed, "preference").answered("rejected").messages[-1] == ("assistant", "Tea.")


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ({"prompt": "Hi?", "chosen": "Hello."}, "has no 'rejected' answer"),
        ({"prompt": "Hi?", "chosen": "Hello.", "rejected": " Hello. "}, "the same chosen and rejected"),
        ({"chosen": "A", "rejected": "B"}, "has no 'prompt'"),
        ({"prompt": "Hi?", "chosen": "", "rejected": "B"}, "has no 'chosen' answer"),
    ],
)
def test_a_broken_preference_row_is_named(row, said):
    with pytest.raises(RowProblem, match=said):
        to_example(row, "preference")


def test_data_inspect_reports_the_preference_format_and_its_problems(tmp_path):
    rows = [*preference_dataset.rows()[:6], {"prompt": "Hi?", "chosen": "Hello."}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli("data", "inspect", path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "preference" and report["rows"] == 6
    assert "no 'rejected' answer" in json.dumps(report["problems"])


# ---------------------------------------------------------------------------------------------- losses


def test_the_losses_are_the_papers_formulas():
    import torch

    from finetune_gui.core.training.objectives.preference import PreferenceLoss

    logps = torch.tensor([-4.0, -6.0, -9.0, -5.0])  # chosen 0, 1; rejected 0, 1
    reference = torch.tensor([-5.0, -6.5, -8.0, -5.5])
    lengths = torch.tensor([4.0, 3.0, 6.0, 2.0])
    beta = 0.1
    delta = (logps[:2] - logps[2:]) - (reference[:2] - reference[2:])
    dpo = PreferenceLoss("dpo", beta)._dpo(logps, reference, 2)
    assert math.isclose(
        float(dpo[0]), float(-torch.nn.functional.logsigmoid(beta * delta).mean()), rel_tol=1e-6
    )
    assert torch.allclose(dpo[1], beta * (logps[:2] - reference[:2]))
    hinge = PreferenceLoss("dpo", beta, "hinge")._dpo(logps, reference, 2)[0]
    assert math.isclose(float(hinge), float(torch.relu(1 - beta * delta).mean()), rel_tol=1e-6)
    ipo = PreferenceLoss("dpo", beta, "ipo")._dpo(logps, reference, 2)[0]
    assert math.isclose(float(ipo), float(((delta - 1 / (2 * beta)) ** 2).mean()), rel_tol=1e-6)

    orpo = PreferenceLoss("orpo", beta)._orpo(logps, lengths, 2)[0]
    mean = logps / lengths
    odds = lambda p: math.log(math.exp(p) / (1 - math.exp(p)))  # noqa: E731
    ratio = [math.log(1 / (1 + math.exp(-(odds(mean[i]) - odds(mean[2 + i]))))) for i in range(2)]
    nll = -(logps[0] + logps[1]) / (lengths[0] + lengths[1])
    assert math.isclose(float(orpo), float(nll) - beta * sum(ratio) / 2, rel_tol=1e-5)


def test_the_collator_puts_chosen_rows_before_rejected_ones():
    from finetune_gui.core.training.objectives.preference import REFERENCE_KEY, PairCollator

    batch = PairCollator(0)(
        [
            {"chosen_input_ids": [5, 6, 7], "chosen_labels": [-100, 6, 7], "rejected_input_ids": [5, 8],
             "rejected_labels": [-100, 8], "reference_chosen": -1.0, "reference_rejected": -2.0},
            {"chosen_input_ids": [9, 10], "chosen_labels": [-100, 10], "rejected_input_ids": [9, 11, 12, 13],
             "rejected_labels": [-100, 11, 12, 13], "reference_chosen": -3.0, "reference_rejected": -4.0},
        ]
    )  # fmt: skip
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [9, 10, 0, 0], [5, 8, 0, 0], [9, 11, 12, 13]]
    assert batch["attention_mask"].tolist()[1] == [1, 1, 0, 0]
    assert batch[REFERENCE_KEY].tolist() == [-1.0, -3.0, -2.0, -4.0]


# ------------------------------------------------------------------------------------------------ runs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return preference_dataset.write(tmp_path_factory.mktemp("pairs"))


def preference_config(tiny_model, pairs, out, method, objective, **training):
    train, held = pairs
    config = RunConfig(model=str(tiny_model), method=method, output_dir=str(out))
    config.dataset.path, config.dataset.validation_path = str(train), str(held)
    t = config.training
    t.objective, t.batch_size, t.max_seq_len, t.logging_steps = objective, 4, 64, 1
    t.max_steps, t.eval_steps, t.save_steps, t.warmup_ratio, t.lr_scheduler = 12, 6, 3, 0.0, "constant"
    t.learning_rate = 1e-2 if method != "full" else 1e-3
    t.sample_prompts, t.sample_max_new_tokens, t.early_stopping = 1, 8, 0
    t.check_forgetting = False
    config.lora.r = 8
    for key, value in training.items():
        setattr(t, key, value)
    return config


# What trains: an adapter and every weight; what it learns from: both preference objectives.
@pytest.mark.parametrize(
    ("method", "objective"), [("lora", "dpo"), ("full", "dpo"), ("lora", "orpo"), ("full", "orpo")]
)
def test_a_preference_run_stops_resumes_and_prefers_the_chosen_answers_on_held_out_prompts(
    method, objective, tiny_model, pairs, tmp_path
):
    import torch

    out = tmp_path / "run"
    control = RunControl()

    class StopAtThree(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, Step) and event.step == 2:
                control.request_stop()

    first = StopAtThree()
    assert (
        run_training(
            preference_config(tiny_model, pairs, out, method, objective), sink=first, control=control
        )
        == 0
    )
    assert first.of(Finished)[0].status == "stopped" and max(e.step for e in first.of(Step)) == 3
    sink = ListSink()
    config = preference_config(tiny_model, pairs, out, method, objective)
    assert run_training(config, sink=sink, control=RunControl(), resume=True) == 0
    steps = sink.of(Step)
    assert [e.step for e in steps] == list(range(4, 13))
    assert all(e.reward_margin is not None and e.preference_accuracy is not None for e in steps)
    assert all(e.preference_accuracy is not None for e in sink.of(Eval))
    learned = sink.of(Learned)[0]
    assert learned.objective == objective and learned.questions == 18
    assert learned.verdict == "learned", learned.summary
    assert learned.tuned_right > learned.base_right, learned.summary
    run = json.loads((out / "run.json").read_text())
    assert run["objective"] == objective and run["status"] == "completed"
    assert run["metrics"]["preferred_chosen"] == learned.tuned_right
    assert run["reference"] == (
        {"lora": "adapter_off", "full": "precomputed"}[method] if objective == "dpo" else None
    )
    # The result loads in plain transformers / PEFT and differs from the base.
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[1, 5, 9, 20, 30, 40]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    before = base(ids).logits
    if method == "full":
        tuned = AutoModelForCausalLM.from_pretrained(out / "model")
    else:
        from peft import PeftModel

        tuned = PeftModel.from_pretrained(base, out / "adapter")
    assert not torch.allclose(tuned(ids).logits, before, atol=1e-4)


def test_a_run_at_a_near_zero_learning_rate_is_not_said_to_have_learned(tiny_model, pairs, tmp_path):
    sink = ListSink()
    config = preference_config(
        tiny_model, pairs, tmp_path / "run", "lora", "dpo", learning_rate=1e-8, max_steps=6
    )
    assert run_training(config, sink=sink, control=RunControl()) == 0
    learned = sink.of(Learned)[0]
    assert learned.verdict == "did not move", learned.summary
    assert learned.tuned_right == learned.base_right
    assert "Try a higher learning rate" in learned.summary


def test_the_estimate_command_gives_the_runs_figure_and_counts_two_sequences_a_row(
    tiny_model, pairs, tmp_path
):
    from finetune_gui.core.estimate import estimate_run, shape_for
    from finetune_gui.core.hardware import Hardware

    config = preference_config(
        tiny_model, pairs, tmp_path / "run", "lora", "dpo", max_steps=1, check_questions=0
    )
    path = tmp_path / "run.yaml"
    config.save(path)
    assert run_training(RunConfig.load(path), sink=ListSink(), control=RunControl()) == 0
    from_run = json.loads((tmp_path / "run" / "run.json").read_text())["estimate_gib"]
    command = cli("estimate", "--config", path, "--json")
    assert command.returncode == 0, command.stderr
    assert json.loads(command.stdout)["methods"]["lora"]["total_gib"] == from_run

    hardware = Hardware(cpu_count=2, ram_total_gib=24, ram_available_gib=20)
    supervised = RunConfig.from_dict(
        {**config.to_dict(), "training": {**config.to_dict()["training"], "objective": "sft"}}
    )
    pair = estimate_run(config, shape_for(config), hardware, methods=["lora"]).methods["lora"]
    single = estimate_run(supervised, shape_for(supervised), hardware, methods=["lora"]).methods["lora"]
    assert pair.breakdown["activations"] > 1.9 * single.breakdown["activations"]


def test_the_wrong_kind_of_data_for_the_objective_is_one_sentence(tiny_model, pairs, small_dataset, tmp_path):
    sink = ListSink()
    config = preference_config(tiny_model, pairs, tmp_path / "sft", "lora", "sft")
    config.dataset.validation_path = None
    assert run_training(config, sink=sink, control=RunControl()) == 2
    failed = sink.of(Failed)[0]
    assert failed.kind_ == "data" and "choose the DPO or ORPO objective" in failed.message
    sink = ListSink()
    config = preference_config(tiny_model, pairs, tmp_path / "dpo", "lora", "dpo")
    config.dataset.path, config.dataset.validation_path = str(small_dataset), None
    assert run_training(config, sink=sink, control=RunControl()) == 2
    failed = sink.of(Failed)[0]
    assert failed.kind_ == "data" and "learns from pairs" in failed.message
    assert "\n" not in failed.message and not Path(tmp_path / "dpo" / "adapter").exists()


def test_adapter_off_is_refused_for_a_method_without_one():
    from finetune_gui.core.errors import ConfigError

    with pytest.raises(ConfigError, match="use 'precomputed'"):
        RunConfig.from_dict({"model": "m", "method": "full", "preference": {"reference": "adapter_off"}})


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "full"])  # the reference: the adapter off, or precomputed
def test_dpo_trains_in_two_processes(method, tiny_model, pairs, tmp_path):
    config = preference_config(tiny_model, pairs, tmp_path / "run", method, "dpo", max_steps=6, batch_size=2)
    path = tmp_path / "run.yaml"
    config.save(path)
    result = cli("train", path, "--num-processes", 2, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "completed" and run["learning"]["verdict"] == "learned"


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["dpo", "orpo"])
def test_the_demo_model_takes_up_a_house_style_it_never_used(objective, demo_model, tmp_path):
    """With only model, data, method and objective given, LoRA on the demo model prefers the chosen answers
    of held-out prompts far more often than the base (the figures in docs/methods.md), and says so."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from preference import run as bench_run  # bench/preference.py

    train, held = preference_dataset.write(tmp_path / "data")
    (tmp_path / "out").mkdir()
    found = bench_run(str(demo_model), "lora", objective, train, held, tmp_path / "out")
    assert found["status"] == "completed", found
    assert found["verdict"] == "learned", found
    assert found["tuned_prefers_chosen"] >= found["base_prefers_chosen"] + found["held_out_pairs"] // 2, found
    assert found["tuned_prefers_chosen"] >= 0.8 * found["held_out_pairs"], found


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
