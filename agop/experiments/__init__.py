"""The paper's experiments, one topic per module, built on the engine and the estimators.

* :mod:`agop.experiments.ansatz`: the ansatz report of any CNN (:func:`~agop.experiments.ansatz.verify_ansatz`,
  :class:`~agop.experiments.ansatz.AnsatzTable`), the sketch's accuracy and the layer views of
  chapters 01 and 03;
* :mod:`agop.experiments.local_signals`: CNTK, ConvRFM, Deep ConvRFM and the CNN on one
  local-signal task (:func:`~agop.experiments.local_signals.compare_methods`, chapters 05 and 06);
* :mod:`agop.experiments.emergence`: fully connected networks and RFMs on translation-invariant
  inputs, and the localisation of their features (chapter 07);
* :mod:`agop.experiments.renormalization`: Bayesian one-hidden-layer CNNs and fully connected
  networks sampled by Langevin dynamics, and their per-position kernel weights (chapter 07);
* :mod:`agop.experiments.convergence`: split-R-hat and the effective sample size of Markov
  chains (:func:`~agop.experiments.convergence.split_rhat`,
  :func:`~agop.experiments.convergence.effective_sample_size`).

Import the module you need (``from agop.experiments.ansatz import verify_ansatz``); the
package itself imports none of them.
"""
