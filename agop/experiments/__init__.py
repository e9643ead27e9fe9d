"""Experiments behind the book's later chapters, one topic a module."""
