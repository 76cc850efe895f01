import time

while True:  # waits for a GPU that never comes
    time.sleep(0.1)
