"""Why a prediction: per-prediction attributions on the columns the user sent.

- `folding`: which input column each output column of the preprocessing comes from;
- `tree_shap`: exact TreeSHAP (the `shap` library) on the model's own input;
- `permutation`: the bounded model-agnostic fallback, on the raw columns;
- `explainer`: one model's explainer, the method chosen from its estimator;
- `answers`: the `explanation` objects of the API;
- `ranking`: global mean |attribution| per column and its drift (nDCG, share changes).

`shap` is an optional extra (`tabserve[explain]`): only `tree_shap` and `permutation` import it,
when a model is first explained.
"""
