"""A small run of chapter 7's posterior sampler on one set of images (tests only), so that
each test names only what it changes."""

from agop_book.ch07_other_accounts import sample_posterior

SMALL_RUN = dict(width=2, patch_size=3, temperature=0.1, n_steps=4, step_size=1e-3, burn_in=0)


def one_chain(X, y, **changes):
    """``sample_posterior`` with one chain trained and tested on ``X`` (labels ``y``): the
    keywords of ``SMALL_RUN``, each replaced by ``changes`` where given."""
    return sample_posterior(X[None], y[None], X[None], **{**SMALL_RUN, **changes})
