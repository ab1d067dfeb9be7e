"""adgm.machine: the record of the machine a run starts on."""

from __future__ import annotations

import torch

from adgm.machine import cpu_model, describe_machine


def test_cpu_model_reads_the_model_name_of_linux_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 9R14\n"
    )
    assert cpu_model(cpuinfo) == "AMD EPYC 9R14"


def test_cpu_model_tells_two_generations_of_one_name_apart(tmp_path):
    """A virtual machine may call a Zen 4 and a Zen 5 processor both 'AMD EPYC'."""
    names = []
    for family, model in (("25", "17"), ("26", "2")):
        cpuinfo = tmp_path / f"cpuinfo-{family}"
        cpuinfo.write_text(
            f"processor\t: 0\ncpu family\t: {family}\nmodel\t\t: {model}\n"
            "model name\t: AMD EPYC\n\nprocessor\t: 1\ncpu family\t: 99\n"
        )
        names.append(cpu_model(cpuinfo))
    assert names == ["AMD EPYC (family 25, model 17)", "AMD EPYC (family 26, model 2)"]


def test_cpu_model_without_cpuinfo_falls_back_to_the_platform(tmp_path):
    assert cpu_model(tmp_path / "missing") != ""
    (tmp_path / "arm").write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")  # no model name
    assert cpu_model(tmp_path / "arm") != ""


def test_describe_machine_names_torch_threads_and_device():
    described = describe_machine(torch.device("cpu"))
    assert described["torch"] == torch.__version__
    assert described["threads"] == torch.get_num_threads()
    assert described["device"] == "cpu" and "gpu" not in described
    assert described["cores"] >= 1 and described["cpu"]
