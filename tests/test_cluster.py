"""The ablation on a cluster: which job a task of a job array runs, and the launch files."""

import os
import subprocess
import sys

import pytest
import yaml

from cmri2spec_tf.experiments import study
from cmri2spec_tf.base.errors import ConfigError
from tests.conftest import REPO


def _jobs(out="o"):
  return study.plan_jobs(out, ["ours_no_gan", "ours"], [0, 1], [0, 1, 2])


def test_scheduler_variables_pick_the_task():
  slurm = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "4"}
  assert study.task_from_environment(slurm) == (2, 4)  # --array=5-8: the third task of 4
  assert study.task_from_environment({"SLURM_ARRAY_TASK_ID": "3"}) == (3, None)
  assert study.task_from_environment({"JOB_COMPLETION_INDEX": "11"}) == (11, None)
  assert study.task_from_environment({"SLURM_JOB_ID": "99"}) is None
  assert study.task_from_environment({}) is None


def test_shards_cover_every_job_once_and_ids_name_one_job():
  jobs = _jobs()
  assert len(jobs) == 12
  shards = [study.select_jobs(jobs, "o", shard=i, num_shards=5) for i in range(5)]
  assert sorted((j.method, j.seed, j.fold) for s in shards for j in s) == \
      sorted((j.method, j.seed, j.fold) for j in jobs)
  assert [len(s) for s in shards] == [3, 3, 2, 2, 2]
  assert study.select_jobs(jobs, "o", shard=4) == [jobs[4]]  # no count: one job per task
  assert study.select_jobs(jobs, "o", shard=12) == []  # an index past the jobs has none
  assert study.select_jobs(jobs, "o", job="ours/seed-1/fold-2") == [jobs[11]]
  assert study.select_jobs(jobs, "o", job="3") == [jobs[3]]
  assert study.job_id(jobs[3], "o") == "ours/seed-0/fold-1"
  with pytest.raises(ConfigError, match="--job=ours/seed-9"):
    study.select_jobs(jobs, "o", job="ours/seed-9/fold-0")
  with pytest.raises(ConfigError, match="not below the number of shards"):
    study.select_jobs(jobs, "o", shard=5, num_shards=5)


def test_kubernetes_manifest_is_an_indexed_job_of_the_training_image():
  with open(os.path.join(REPO, "cluster", "k8s-ablation.yaml")) as f:
    manifest = yaml.safe_load(f)
  assert manifest["kind"] == "Job" and manifest["apiVersion"] == "batch/v1"
  spec = manifest["spec"]
  assert spec["completionMode"] == "Indexed" and spec["completions"] == 945
  container = spec["template"]["spec"]["containers"][0]
  assert "cmri2spec-train" in container["image"]
  assert container["command"] == ["cmri2spec-ablation"]
  assert "--flagfile=ablation_paper" in container["args"]
  assert [e["name"] for e in container["env"]] == ["JOB_COMPLETION_INDEX"]
  assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_the_launch_files_ask_for_as_many_tasks_as_the_paper_config_has_jobs():
  listed = subprocess.run(
      [sys.executable, "-m", "cmri2spec_tf.ablation", "--flagfile=ablation_paper", "--list_jobs",
       "--data_dir=/nonexistent/phantom", "--phantom", "--out_dir=/tmp/unused"], cwd=REPO,
      capture_output=True, text=True, timeout=120)
  assert listed.returncode == 0, listed.stderr[-2000:]
  ids = listed.stdout.split()
  assert len(ids) == 945 and ids[0] == "lip2audspec/seed-0/fold-0" and len(set(ids)) == 945
  script = open(os.path.join(REPO, "cluster", "slurm-ablation.sh")).read()
  assert "#SBATCH --array=0-944" in script and "#SBATCH --gres=gpu:1" in script
  assert subprocess.run(["bash", "-n", os.path.join(REPO, "cluster", "slurm-ablation.sh")]).returncode == 0
