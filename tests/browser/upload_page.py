#!/usr/bin/env python3
"""Uploads photos through tabby serve's page in a real browser.

Usage: upload_page.py URL IMAGE [SCREENSHOT.png]

Opens URL (the server's /) in headless Chromium driven by chromedriver, picks
IMAGE with the page's file input, waits until the page shows its label, and
prints {"label": ..., "probability": ..., "bars": N, "thumbnail": WIDTH} as
JSON. Exit status: 0 shown, 1 the page showed an error or nothing, 2 no
browser to drive.
"""
import json
import os
import sys

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:
    print(f"upload_page: selenium is missing ({e})", file=sys.stderr)
    sys.exit(2)


def browser():
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1000,800"):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def shown_label(driver):
    labels = driver.find_elements(By.CSS_SELECTOR, ".result .label")
    if labels and labels[0].text not in ("", "…"):
        return labels[0]
    return False


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    # chromedriver refuses a file path with ".." in it ("path is not canonical").
    url, image = sys.argv[1], os.path.realpath(sys.argv[2])
    try:
        driver = browser()
    except WebDriverException as e:
        print(f"upload_page: cannot start Chromium: {e.msg}", file=sys.stderr)
        return 2
    try:
        driver.get(url)
        driver.find_element(By.ID, "files").send_keys(image)
        try:
            label = WebDriverWait(driver, 60).until(shown_label)
        except TimeoutException:
            print("upload_page: the page showed no label within 60 s", file=sys.stderr)
            return 1
        result = driver.find_element(By.CSS_SELECTOR, ".result")
        thumbnail = result.find_element(By.TAG_NAME, "img")
        out = {
            "label": label.text,
            "probability": label.get_attribute("data-probability"),
            "bars": len(result.find_elements(By.CSS_SELECTOR, ".bar")),
            "thumbnail": driver.execute_script("return arguments[0].naturalWidth", thumbnail),
            "errors": [e.text for e in result.find_elements(By.CSS_SELECTOR, "div.error")],
        }
        if len(sys.argv) > 3:
            driver.save_screenshot(sys.argv[3])
        print(json.dumps(out))
        return 0 if label.text != "error" else 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
