"""Reading other memory systems' data into memstrata."""
