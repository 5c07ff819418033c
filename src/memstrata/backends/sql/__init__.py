"""The SQL layer both SQL stores share: a dialect, row codecs, statements and the store skeleton."""
