"""The price model: time split, xgboost.spark fit, conformal ranges, evaluation against baselines and the noise
floor, model card, registration, the champion/challenger gate and batch scoring with guardrails."""
