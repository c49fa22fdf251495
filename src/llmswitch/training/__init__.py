"""Offline training of learned routers: fitting, cross-validation, kind selection, replay.

Never imported at serve time: loading a router file and routing need only
`llmswitch.routing.learned` (NumPy and SciPy), while this package also uses outcome tables
(`llmswitch.evals`) and scikit-learn. Needs the ``router`` extra.
"""
