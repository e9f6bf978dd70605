"""The registered models load where our wheel is not installed (Model Serving, ``spark_udf`` in a virtualenv), and
what links them to their runs, code and outputs.

Both models are logged and registered by the real registration code into a fresh local MLflow store, then
loaded by ``models:/name/version`` in a Python that cannot import ``pricing`` (no site, so the editable
install's finder is not activated; only the venv's site-packages on the path), where they must predict the same
numbers.  Tiny boosters trained here with xgboost directly stand in for the distributed fits."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow.tracking import MlflowClient

from pricing.demand_model import training as demand_training
from pricing.demand_model.estimator import ALL as DEMAND_ALL
from pricing.demand_model.estimator import DemandPredictor, as_pandas_input
from pricing.platform import tracking
from pricing.platform.config import Config, load_config
from pricing.platform.tables import TableRef
from pricing.price_model.predictor import ALL, Intervals, PricePredictor
from pricing.price_model.registry import register
from pricing.price_model.scoring import log_scoring_summary
from pricing.price_model.training import Evaluation, Split, git_commit
from tests.reliability.support import together

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ("x", "seg")
COMMIT = "0123abcd" * 5

CHILD = """
import pickle, sys
try:
    import pricing  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    sys.exit("this Python must not be able to import pricing")
import mlflow

jobs = pickle.load(open(sys.argv[1], "rb"))
out = {uri: mlflow.pyfunc.load_model(uri).predict(frame) for uri, frame in jobs.items()}
pickle.dump(out, open(sys.argv[2], "wb"))
"""


def _booster(X: np.ndarray, y: np.ndarray, names: list[str], **params: object) -> xgb.Booster:
    b = xgb.train({"max_depth": 3, "eta": 0.3, "nthread": 1, **params}, xgb.DMatrix(X, y), num_boost_round=15)
    b.feature_names = names
    return b


def _price_predictor() -> PricePredictor:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(0, 5, 300), rng.integers(0, 3, 300)]).astype(np.float32)
    median = _booster(X, 1.0 + 0.5 * X[:, 0], list(FEATURES))
    return PricePredictor(FEATURES, median, Intervals("conformal", "seg", {ALL: (-0.2, 0.3), "1": (-0.4, 0.1)}))


def _demand_predictor() -> DemandPredictor:
    rng = np.random.default_rng(1)
    v = rng.normal(3.0, 0.5, 400)
    value = _booster(v[:, None].astype(np.float32), np.log1p(np.exp(v)), ["v"])
    r = rng.normal(0.0, 0.3, 400)
    y = (rng.uniform(size=400) < 1 / (1 + np.exp(3 * r))).astype(float)
    clf = _booster(np.column_stack([v, v, r]).astype(np.float32), y, ["v", "log_value", "log_price_to_value"],
                   objective="binary:logistic", monotone_constraints="(0,0,-1)")
    return DemandPredictor(("v",), clf, (value, value), {DEMAND_ALL: 2.0, "a": 3.0}, 30, 0.95,
                           frailty_k=1.5, exposure_knots=(0.0, 30.0), exposure_values=(0.0, 1.0))


def _load_elsewhere(tmp_path: Path, frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``mlflow.pyfunc.load_model(uri).predict(frame)`` for each ``uri: frame``, in a Python without our package."""
    jobs, result = tmp_path / "jobs.pkl", tmp_path / "result.pkl"
    jobs.write_bytes(pickle.dumps(frames))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": sysconfig.get_paths()["purelib"],
           "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(), "MLFLOW_REGISTRY_URI": mlflow.get_registry_uri()}
    done = subprocess.run([sys.executable, "-S", "-c", CHILD, str(jobs), str(result)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return pickle.loads(result.read_bytes())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Config]:
    """A config on a fresh MLflow store under ``tmp_path``; the process-wide MLflow URIs are put back after."""
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    cfg = load_config("local", [f"storage.root={tmp_path / 'state'}", "mlflow.model_name=portable_price",
                                "mlflow.demand_model_name=portable_demand", f"mlflow.git_commit={COMMIT}"])
    tracking.setup(cfg)
    yield cfg
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


def test_both_registered_models_load_and_predict_without_our_package(spark, store: Config, tmp_path: Path) -> None:
    cfg, client = store, MlflowClient()
    rng = np.random.default_rng(2)
    # ---- the price model, registered as `pricing train` does
    price = _price_predictor()
    price_rows = pd.DataFrame({"x": rng.uniform(0, 5, 8), "seg": rng.integers(0, 3, 8).astype(float)})
    test_df = spark.createDataFrame(price_rows)
    split = Split(test_df, test_df, test_df, test_df, test_df, datetime(2025, 1, 1), datetime(2025, 1, 15),
                  datetime(2025, 2, 1), datetime(2025, 3, 1), datetime(2025, 3, 31), 30)
    logged = {"test_rmsle": 0.41, "test_coverage_80": 0.8, "baseline_global_median_rmsle": 0.6}
    ev = Evaluation(pd.DataFrame(), {"rmsle": 0.41, "coverage_80": 0.8}, {"global_median": {"rmsle": 0.6}},
                    pd.DataFrame(), None, logged, [])
    card = "# Model card: `portable_price`\n\nA card.\n"
    with mlflow.start_run(run_name="train-portable") as run:
        price_v = register(cfg, price, split, tmp_path, run.info.run_id, ev,
                           TableRef("features.training_set", str(tmp_path / "ts")), 3, card)
    price_run = run.info.run_id
    # ---- the demand model, registered as `pricing demand` does
    demand = _demand_predictor()
    demand_rows = pd.DataFrame({"listing_id": np.arange(8), "v": rng.normal(3.0, 0.5, 8),
                                "value_fold": rng.integers(0, 2, 8), "own_price": rng.uniform(10, 40, 8),
                                "segment": rng.choice(["a", "b"], 8)})
    demand_metrics = {"test_logloss": 0.5, "test_auc": float("nan"), "base_rate_logloss": 0.69}
    with mlflow.start_run(run_name="demand-portable") as run:
        demand_v = demand_training.register(cfg, demand, spark.createDataFrame(demand_rows), tmp_path,
                                            run.info.run_id, demand_metrics, [], "features.training_set", 3)
    demand_run = run.info.run_id

    # Loaded where `import pricing` fails, both predict what the package's predictors do.
    demand_input = as_pandas_input(demand_rows.assign(price=demand_rows["own_price"] * 1.1), demand.features)
    p10, p50, p90 = price.predict(price.matrix(price_rows))
    price_uri, demand_uri = f"models:/portable_price/{price_v}", f"models:/portable_demand/{demand_v}"
    got = _load_elsewhere(tmp_path, {price_uri: price_rows, demand_uri: demand_input})
    pd.testing.assert_frame_equal(got[price_uri], pd.DataFrame({"p10": p10, "p50": p50, "p90": p90}))
    p_sale = demand.p_sale(demand_input, demand_input[["price"]].to_numpy())[:, 0]
    pd.testing.assert_frame_equal(got[demand_uri], pd.DataFrame({"p_sale": p_sale}))
    # Logged from code (the self-contained pyfunc.py files), so nothing is unpickled at load; same pins as before.
    for uri in (price_uri, demand_uri):
        conf = mlflow.models.get_model_info(uri).flavors["python_function"]
        assert conf["model_code_path"].endswith("pyfunc.py"), conf
        reqs = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text().split()
        assert reqs == tracking.model_requirements(), reqs

    # The links: the run's metrics on the logged model, the card as descriptions, the commit from the config.
    for name, version, run_id, metrics in (("portable_price", price_v, price_run, logged),
                                           ("portable_demand", demand_v, demand_run, {"test_logloss": 0.5,
                                                                                     "base_rate_logloss": 0.69})):
        mv = client.get_model_version(name, str(version))
        (output,) = client.get_run(run_id).outputs.model_outputs
        assert mv.source == f"models:/{output.model_id}"
        model = mlflow.get_logged_model(output.model_id)
        assert {m.key: m.value for m in model.metrics or []} == metrics
        assert client.get_run(run_id).data.metrics == metrics
        assert mv.tags["git_commit"] == COMMIT
    assert client.get_model_version("portable_price", str(price_v)).description == card
    assert client.get_registered_model("portable_price").description == card
    # A loaded version is this package's predictor, not the logged file's copy of the class.
    from pricing.price_model.promotion import load_version

    assert type(load_version("portable_price", price_v)) is PricePredictor
    assert type(demand_training.load_demand_version("portable_demand", demand_v)) is DemandPredictor

    # Loaded by threads of one process at once (two jobs of a local workflow, two scorings racing), each thread
    # gets its own model, and MLflow's stand-in for `dbutils` does not stay behind in sys.modules.  Without the
    # lock in `tracking.load_code_model` about a third of such rounds went wrong.
    loaders = [lambda: load_version("portable_price", price_v),
               lambda: demand_training.load_demand_version("portable_demand", demand_v)] * 2
    for _ in range(8):
        got_types = [type(m) for m in together(*loaders)]
        assert got_types == [PricePredictor, DemandPredictor] * 2, got_types
        assert "dbutils" not in sys.modules, sys.modules["dbutils"]


def test_the_scoring_run_records_the_model_version_and_the_delta_version_it_wrote(spark, store: Config,
                                                                                    tmp_path: Path) -> None:
    written = spark.createDataFrame(pd.DataFrame({"suggested_price": [12.0, 20.5, 7.99]}))
    stats = {"rows": 3.0, "needs_review_share": 0.0}
    out = TableRef("ml.price_suggestions", str(tmp_path / "suggestions"))
    run_id = log_scoring_summary(store, written, stats, 4, date(2025, 3, 1), None, 11, out, 17)
    run = MlflowClient().get_run(run_id)
    assert run.data.params["model_uri"] == "models:/portable_price/4"
    assert run.data.params["model_version"] == run.data.tags["model_version"] == "4"
    assert run.data.params["output_table"] == str(out)
    assert run.data.params["output_table_version"] == run.data.tags["output_table_version"] == "17"
    assert run.data.params["feature_table_version"] == "11"


def test_the_git_commit_comes_from_the_config_else_a_checkout_else_unknown(tmp_path: Path) -> None:
    cfg = load_config("local")
    assert git_commit(cfg.with_overrides([f"mlflow.git_commit={COMMIT}"])) == COMMIT
    # An all-digit commit arrives from --set as a YAML number: still the commit, as text.
    assert git_commit(cfg.with_overrides(["mlflow.git_commit=12345678"])) == "12345678"
    # The bundle's ${bundle.git.commit} is empty outside git: as if unset.
    elsewhere = cfg.model_copy(update={"project_dir": str(tmp_path)})
    assert git_commit(elsewhere.with_overrides(["mlflow.git_commit="])) == "unknown"
    (tmp_path / "sub").mkdir()
    # A folder inside a checkout (a wheel unpacked somewhere) is not the checkout: no commit of another repository.
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert git_commit(cfg.model_copy(update={"project_dir": str(tmp_path / "sub")})) == "unknown"
    if (ROOT / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        assert git_commit(cfg.model_copy(update={"project_dir": str(ROOT)})) == head


def test_the_logged_model_files_import_only_what_their_pip_requirements_install() -> None:
    """The child above has all of the venv (pyspark too); what a serving environment has is the model's pins."""
    import ast

    pinned = {req.split("==")[0] for req in tracking.model_requirements()}
    for path in (ROOT / "pricing/price_model/pyfunc.py", ROOT / "pricing/demand_model/pyfunc.py"):
        tops = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module, f"{path.name}: a relative import"
                tops.add(node.module.split(".")[0])
        assert tops - sys.stdlib_module_names - {"__future__"} <= pinned, (path, tops)
