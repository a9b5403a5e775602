"""Every rule's log says where it ran: the host, and the SLURM job inside an allocation."""

import logging

from lstfill.logs import setup_logging


def test_log_names_host_and_slurm_job(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_STEP_ID", raising=False)
    setup_logging(tmp_path / "a.log")
    logging.shutdown()
    assert "in SLURM job 4242" in (tmp_path / "a.log").read_text()


def test_log_outside_slurm_names_only_the_host(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    setup_logging(tmp_path / "b.log")
    logging.shutdown()
    text = (tmp_path / "b.log").read_text()
    assert "running on " in text and "SLURM" not in text
