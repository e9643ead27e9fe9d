"""Experiments that compare the AGOP account with other accounts of feature learning."""
